"""``python -m services.notifier``"""

from services.notifier.app import build_app
from shared.runtime import serve
from shared.settings import NotifierSettings

if __name__ == "__main__":
    serve(NotifierSettings, build_app)
