"""A Flask app. Run with no argument it answers one request through Flask's test client
and prints the response (what the image's test runs); with `serve` it listens on :8000."""
import sys
from importlib.metadata import version

from flask import Flask

app = Flask(__name__)


@app.get("/")
def index():
    return f"Hello from Flask {version('flask')}"


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        app.run(host="0.0.0.0", port=8000)
    else:
        response = app.test_client().get("/")
        print(response.status_code, response.get_data(as_text=True))
