"""``python -m services.intake``"""

from services.intake.app import build_app
from shared.runtime import serve
from shared.settings import IntakeSettings

if __name__ == "__main__":
    serve(IntakeSettings, build_app)
