"""``python -m services.planner``"""

from services.planner.app import build_app
from shared.runtime import serve
from shared.settings import PlannerSettings

if __name__ == "__main__":
    serve(PlannerSettings, build_app)
