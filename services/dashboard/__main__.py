"""``python -m services.dashboard``"""

from services.dashboard.app import build_app
from shared.runtime import serve
from shared.settings import DashboardSettings

if __name__ == "__main__":
    serve(DashboardSettings, build_app)
