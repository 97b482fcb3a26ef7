"""``python -m services.scheduler``"""

from services.scheduler.app import build_app
from shared.runtime import serve
from shared.settings import SchedulerSettings

if __name__ == "__main__":
    serve(SchedulerSettings, build_app)
