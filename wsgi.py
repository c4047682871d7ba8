from dotenv import find_dotenv, load_dotenv

load_dotenv(find_dotenv(usecwd=True))  # before create_app() reads any setting

from chatconnect import create_app  # noqa: E402

app = create_app()
