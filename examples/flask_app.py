"""A Flask app on rig_sync: prompt an agent, stream its reply, fan a prompt out to several models.

    flask --app examples.flask_app run                       # Flask finds create_app()
    gunicorn --workers 4 --threads 8 'examples.flask_app:create_app()'

    curl 'localhost:5000/ask?prompt=Hello'
    curl -N 'localhost:5000/stream?prompt=Tell+me+a+story'
    curl -X POST localhost:5000/fan-out -H 'Content-Type: application/json' -d '{"prompt": "Hi"}'

Settings come from the environment (see `examples/assistant.py`).
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from rig_sync.errors import RigError

from .assistant import STREAM_HEADERS, Assistant, BadPrompt, clean_prompt


def create_app(assistant: Assistant | None = None) -> Flask:
    """The app factory. The assistant, with its connection pools, is built here: once per
    process, shared by every request and thread. (Under `gunicorn --preload` it is built before
    the workers fork; each worker then opens connections of its own.)"""
    app = Flask(__name__)
    llm = Assistant.from_env() if assistant is None else assistant

    @app.route("/ask", methods=["GET", "POST"])
    def ask() -> Response:
        return jsonify(answer=llm.ask(_prompt()))

    @app.route("/stream", methods=["GET", "POST"])
    def stream() -> Response:
        # Werkzeug closes the body iterator when the response ends or the client disconnects.
        return Response(llm.stream(_prompt()), mimetype="text/plain", headers=STREAM_HEADERS)

    @app.route("/fan-out", methods=["GET", "POST"])
    def fan_out() -> tuple[Response, int]:
        result = llm.fan_out(_prompt())
        return jsonify(result), 200 if result["answers"] else 502

    @app.errorhandler(BadPrompt)
    def bad_prompt(exc: BadPrompt) -> tuple[Response, int]:
        return jsonify(error=str(exc)), 400

    @app.errorhandler(RigError)
    def provider_failed(exc: RigError) -> tuple[Response, int]:
        # rig_sync's messages never carry API keys, so they are safe to show.
        return jsonify(error=f"{type(exc).__name__}: {exc}"), 502

    return app


def _prompt() -> str:
    body = request.get_json(silent=True) if request.method == "POST" else None
    return clean_prompt(body.get("prompt") if isinstance(body, dict) else request.args.get("prompt"))
