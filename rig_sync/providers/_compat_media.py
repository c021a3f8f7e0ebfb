"""Media endpoints where an OpenAI-compatible provider leaves OpenAI's format.

A `CompatProvider` row names these classes in its `models` field for the capabilities they
serve; everything else about the provider (chat, auth, errors) stays OpenAI's.

- Hyperbolic: `POST /image/generation` {model_name, prompt, height, width} -> {images: [{image: b64}]},
  `POST /audio/generation` {text, speed, language, speaker} -> {audio: b64}.
- Hugging Face: the router's hf-inference task endpoints, `POST <router>/hf-inference/models/{model}`:
  raw audio bytes -> {"text": …} (speech recognition), {"inputs": prompt} -> image bytes (text-to-image).
"""

from __future__ import annotations

import base64
import mimetypes
from typing import Any

from ..audio_generation import (
    DEFAULT_VOICE,
    AudioGenerationRequest,
    AudioGenerationResponse,
    BaseAudioGenerationModel,
)
from ..completion import deep_merge
from ..errors import ResponseDecodeError, UnsupportedFeature
from ..image_generation import BaseImageGenerationModel, ImageGenerationRequest, ImageGenerationResponse
from ..transcription import BaseTranscriptionModel, TranscriptionRequest, TranscriptionResponse
from ._common import model_in_path
from ._model import ModelView
from ._openai_media import decode_b64

__all__ = ["HyperbolicImageGenerationModel", "HyperbolicAudioGenerationModel",
           "HFInferenceTranscriptionModel", "HFInferenceImageGenerationModel"]


def _json_object(data: Any, provider: str, field: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ResponseDecodeError(f"{provider} answered with {type(data).__name__}, not an object with {field!r}",
                                  provider=provider, field=field, body=data)
    return data


class HyperbolicImageGenerationModel(ModelView, BaseImageGenerationModel):
    """`POST {base_url}/image/generation` (Hyperbolic's own format, not `/images/generations`)."""

    path = "/image/generation"

    def image_generation(self, request: ImageGenerationRequest) -> ImageGenerationResponse:
        request = self._expect(request, ImageGenerationRequest)
        body = deep_merge({"model_name": self.model, "prompt": request.prompt, "height": request.height,
                           "width": request.width}, request.additional_params)
        data = _json_object(self._post(self.path, body, "image_generation"), self.provider, "images")
        images = data.get("images")
        if not isinstance(images, list) or not images or not isinstance(images[0], dict) \
                or not isinstance(images[0].get("image"), str):
            raise ResponseDecodeError(f"{self.provider} returned no image", provider=self.provider,
                                      field="images[0].image", body=data)
        return ImageGenerationResponse(decode_b64(images[0]["image"], self.provider, "images[0].image", data), data)


class HyperbolicAudioGenerationModel(ModelView, BaseAudioGenerationModel):
    """`POST {base_url}/audio/generation`. As in Rig, the model name is the language ("EN") and the
    request's voice is Hyperbolic's speaker ("EN-US")."""

    path = "/audio/generation"

    def audio_generation(self, request: AudioGenerationRequest) -> AudioGenerationResponse:
        request = self._expect(request, AudioGenerationRequest)
        body: dict[str, Any] = {"text": request.text, "speed": request.speed, "language": self.model}
        if request.voice != DEFAULT_VOICE:  # the core default names no Hyperbolic speaker: let it choose
            body["speaker"] = request.voice
        body = deep_merge(body, request.additional_params)
        data = _json_object(self._post(self.path, body, "audio_generation"), self.provider, "audio")
        if not isinstance(data.get("audio"), str):
            raise ResponseDecodeError(f"{self.provider} returned no audio", provider=self.provider, field="audio",
                                      body=data)
        return AudioGenerationResponse(decode_b64(data["audio"], self.provider, "audio", data), data)


def hf_inference_url(client: Any, model: str) -> str:
    """`<router>/hf-inference/models/{model}`; the client's base URL is the router's `/v1` chat root.
    Absolute, but on the configured host, so the transport still sends the key."""
    root = client.base_url.partition("?")[0]
    root = root[:-3] if root.endswith("/v1") else root
    return f"{root}/hf-inference/models/{model_in_path(client.provider, model, nested=True)}"


class HFInferenceTranscriptionModel(ModelView, BaseTranscriptionModel):
    """Speech recognition on Hugging Face's hf-inference endpoint: the audio bytes in, `{"text"}` out.

    Generation options go in `additional_params` (sent as the task's `parameters`, with the audio
    base64-encoded in `inputs`); the endpoint has no language or prompt field, so those are refused.
    """

    def transcription(self, request: TranscriptionRequest) -> TranscriptionResponse:
        request = self._expect(request, TranscriptionRequest)
        for name in ("language", "prompt"):
            if getattr(request, name) is not None:
                raise UnsupportedFeature(f"{self.provider} speech recognition takes no {name}; "
                                         "pass model options in additional_params")
        parameters = dict(request.additional_params or {})
        if request.temperature is not None:
            parameters = deep_merge(parameters, {"generation_parameters": {"temperature": request.temperature}})
        url = hf_inference_url(self.client, self.model)
        if parameters:
            audio = base64.b64encode(request.data).decode("ascii")
            resp = self._send("POST", url, "transcription", json={"inputs": audio, "parameters": parameters})
        else:
            kind = mimetypes.guess_type(request.filename)[0] or "application/octet-stream"
            resp = self._send("POST", url, "transcription", data=request.data, headers={"Content-Type": kind})
        data = _json_object(resp.json(), self.provider, "text")
        if not isinstance(data.get("text"), str):
            raise ResponseDecodeError(f"{self.provider} transcription has no text", provider=self.provider,
                                      field="text", body=data)
        return TranscriptionResponse(data["text"], data)


class HFInferenceImageGenerationModel(ModelView, BaseImageGenerationModel):
    """Text-to-image on Hugging Face's hf-inference endpoint: `{"inputs": prompt}` in, image bytes out."""

    def image_generation(self, request: ImageGenerationRequest) -> ImageGenerationResponse:
        request = self._expect(request, ImageGenerationRequest)
        body = {"inputs": request.prompt,
                "parameters": deep_merge({"width": request.width, "height": request.height},
                                         request.additional_params)}
        resp = self._send("POST", hf_inference_url(self.client, self.model), "image_generation", json=body)
        kind = resp.headers.get("content-type", "")
        if not resp.content or not kind.startswith("image/"):
            raise ResponseDecodeError(f"{self.provider} text-to-image answered {kind or 'no content type'} "
                                      f"instead of an image: {resp.preview()!r}",
                                      provider=self.provider, field="body")
        return ImageGenerationResponse(resp.content, {"content_type": kind})
