"""Text to image: request, builder, response, model protocol."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs

from ._checks import whole
from .errors import InvalidRequestError

__all__ = ["ImageGenerationRequest", "ImageGenerationResponse", "ImageGenerationModel",
           "BaseImageGenerationModel", "ImageGenerationRequestBuilder"]


def _positive_size(_: Any, attribute: attrs.Attribute[Any], value: int) -> None:
    whole(value, f"{attribute.name} (pixels)", minimum=1)


def _prompt(_: Any, __: Any, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError("image prompt is empty; describe the image to generate")


@attrs.frozen
class ImageGenerationRequest:
    prompt: str = attrs.field(validator=_prompt)
    width: int = attrs.field(default=1024, validator=_positive_size)
    height: int = attrs.field(default=1024, validator=_positive_size)
    additional_params: dict[str, Any] | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(dict))
    )


@attrs.frozen
class ImageGenerationResponse:
    image: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    raw_response: Any = attrs.field(default=None, eq=False, repr=False)


@runtime_checkable
class ImageGenerationModel(Protocol):
    provider: str
    model: str

    def image_generation(self, request: ImageGenerationRequest) -> ImageGenerationResponse: ...

    def image_generation_request(self) -> ImageGenerationRequestBuilder: ...


class BaseImageGenerationModel:
    provider: str
    model: str

    def image_generation(self, request: ImageGenerationRequest) -> ImageGenerationResponse:
        raise NotImplementedError

    def image_generation_request(self) -> ImageGenerationRequestBuilder:
        return ImageGenerationRequestBuilder(self)


class ImageGenerationRequestBuilder:
    """`model.image_generation_request().prompt("a cat").width(512).height(512).send()`."""

    def __init__(self, model: ImageGenerationModel) -> None:
        self._model = model
        self._fields: dict[str, Any] = {}

    def prompt(self, prompt: str) -> ImageGenerationRequestBuilder:
        self._fields["prompt"] = prompt
        return self

    def width(self, width: int) -> ImageGenerationRequestBuilder:
        self._fields["width"] = width
        return self

    def height(self, height: int) -> ImageGenerationRequestBuilder:
        self._fields["height"] = height
        return self

    def additional_params(self, params: dict[str, Any]) -> ImageGenerationRequestBuilder:
        self._fields["additional_params"] = params
        return self

    def build(self) -> ImageGenerationRequest:
        if "prompt" not in self._fields:
            raise InvalidRequestError("no prompt: call .prompt(text) first")
        return ImageGenerationRequest(**self._fields)

    def send(self) -> ImageGenerationResponse:
        return self._model.image_generation(self.build())
