"""Amazon Bedrock: chat on the Converse and ConverseStream APIs (tools, reasoning, usage), and
Titan and Cohere embeddings through InvokeModel.

    from rig_sync.providers import bedrock
    client = bedrock.Client(region="us-east-1")            # AWS credentials from botocore's chain
    client = bedrock.Client("ABSK…", region="us-east-1")   # a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK)
    client = bedrock.Client(region="eu-west-1", aws_access_key_id="AKIA…", aws_secret_access_key="…")
    claude = client.completion_model(bedrock.CLAUDE_SONNET_4_5)   # POST /model/{modelId}/converse
    claude.completion_request("Hello").max_tokens(256).send().text
    client.embedding_model(bedrock.TITAN_EMBED_TEXT_V2, 512).embed_text("hello").vec

Credentials, the first that applies: `api_key` (a Bedrock API key, sent as `Authorization:
Bearer`); `aws_access_key_id` / `aws_secret_access_key` (/ `aws_session_token`), `credentials`
(botocore credentials) or `aws_profile`; `auth=` (any `rig_sync.auth.Auth`); the variable
AWS_BEARER_TOKEN_BEDROCK; else botocore's credential chain (AWS_ACCESS_KEY_ID …, AWS_PROFILE, the
shared files, SSO, container and instance roles). Every way but a key signs each request with SigV4
(`_sigv4.AwsSigV4Auth`) and needs botocore: `pip install 'rig_sync[bedrock]'`, imported only then.

Region: `region`, else AWS_REGION, else AWS_DEFAULT_REGION (else, when signing, the profile's
region). The base URL is `https://bedrock-runtime.{region}.amazonaws.com`, or `base_url` /
BEDROCK_BASE_URL (a VPC endpoint, a gateway, a test server). Model ids (`anthropic.claude-…-v1:0`,
`us.amazon.nova-micro-v1:0`, an inference profile's ARN) are percent-encoded in the path as AWS
encodes them (`:` -> `%3A`).

Errors are Bedrock's `{"message"}` with the type in `x-amzn-errortype`: ThrottlingException is a
`RateLimitError`, ValidationException a `BadRequestError` (`ContextWindowExceededError` for a prompt
too long), AccessDeniedException a `PermissionDeniedError`, ResourceNotFoundException a
`NotFoundError`, UnrecognizedClientException and signature errors `AuthenticationError`, the
service's and models' failures `InternalServerError` (`_bedrock_wire.ERROR_CLASSES`); `err.code` is
the type and `err.request_id` the `x-amzn-requestid`. The wire mapping is in `_bedrock_wire`, the
stream's framing in `_bedrock_stream`.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import attrs

from .. import _wire
from .._checks import whole
from ..auth import Auth, BearerAuth
from ..client import Access, CompletionClient, EmbeddingsClient, ProviderClient, ProviderOptions, env_value, option
from ..completion import BaseCompletionModel, CompletionRequest, CompletionResponse, Usage
from ..embeddings import BaseEmbeddingModel
from ..errors import ClientBuildError, InvalidRequestError, UnsupportedFeature
from ..http import Conventions, shown_url
from ..streaming import StreamingCompletionResponse
from . import _bedrock_wire as wire
from ._bedrock_stream import iter_event_messages, stream_converse
from ._model import ModelView
from ._sigv4 import AwsSigV4Auth

__all__ = ["Client", "ClientBuilder", "BedrockOptions", "CompletionModel", "EmbeddingModel", "AwsSigV4Auth",
           "COHERE_INPUT_TYPES"]

# Model ids, for convenience and typo-safety (cross-region inference profiles start "us.", "eu.", …).
CLAUDE_SONNET_4_5 = "anthropic.claude-sonnet-4-5-20250929-v1:0"
CLAUDE_HAIKU_4_5 = "anthropic.claude-haiku-4-5-20251001-v1:0"
CLAUDE_3_5_HAIKU = "anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA_PRO = "amazon.nova-pro-v1:0"
NOVA_LITE = "amazon.nova-lite-v1:0"
NOVA_MICRO = "amazon.nova-micro-v1:0"
LLAMA_3_3_70B = "meta.llama3-3-70b-instruct-v1:0"
MISTRAL_LARGE = "mistral.mistral-large-2407-v1:0"
TITAN_EMBED_TEXT_V2 = "amazon.titan-embed-text-v2:0"
TITAN_EMBED_TEXT_V1 = "amazon.titan-embed-text-v1"
COHERE_EMBED_ENGLISH_V3 = "cohere.embed-english-v3"
COHERE_EMBED_MULTILINGUAL_V3 = "cohere.embed-multilingual-v3"
COHERE_EMBED_V4 = "cohere.embed-v4:0"

# Cohere's purposes: what the text is for ("search_document" to index it, "search_query" to search).
COHERE_INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")  # it goes into the host name
_REGION_IN_HOST = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com")


class CompletionModel(ModelView, BaseCompletionModel):
    """A model on `POST /model/{modelId}/converse` and `/converse-stream`."""

    def completion(self, request: CompletionRequest) -> CompletionResponse:
        body = wire.converse_body(self._expect(request, CompletionRequest), self.provider)
        answer = self._send("POST", wire.model_path(self.provider, self.model, "converse"), "completion",
                            json=body)
        response = wire.parse_converse(answer.json(), self.provider, request_id=answer.request_id, model=self.model)
        self._report("completion", response.usage)
        return response

    def stream(self, request: CompletionRequest) -> StreamingCompletionResponse:
        body = wire.converse_body(self._expect(request, CompletionRequest), self.provider)
        path = wire.model_path(self.provider, self.model, "converse-stream")
        # events=True: a JSON or HTML document in place of the event stream is an error.
        return self._stream(path, body, stream_converse, framing=iter_event_messages, events=True,
                            raw=request.keep_raw_events)


# Vector sizes by default (Titan v2 and Cohere v4 take `dimensions` / `output_dimension`).
_NDIMS = {"amazon.titan-embed-text-v2:0": 1024, "amazon.titan-embed-text-v1": 1536, "cohere.embed-english-v3": 1024,
          "cohere.embed-multilingual-v3": 1024, "cohere.embed-v4:0": 1536}
_COHERE_BATCH = 96  # texts per request (Cohere's documented limit)


def _base_id(model: str) -> str:
    """The foundation model id in `model`: without an ARN's prefix or a region's (`us.`, `eu.`, `apac.` …)."""
    name = model.rpartition("/")[2]
    head, dot, rest = name.partition(".")
    return rest if dot and head in ("us", "eu", "apac", "us-gov", "ca", "jp", "au", "global") else name


class EmbeddingModel(ModelView, BaseEmbeddingModel):
    """Titan (`amazon.titan-embed-text-*`: one text per request, `{"inputText", "dimensions",
    "normalize"}`) and Cohere (`cohere.embed-*`: up to 96 texts, `{"texts", "input_type"}`) on
    `POST /model/{modelId}/invoke`."""

    def __init__(self, client: Any, model: str, ndims: int | None = None, *,
                 input_type: str = "search_document", normalize: bool = True) -> None:
        super().__init__(client, model)
        base = _base_id(model)
        self.family: str | None = None  # another family is refused when used (its wire is unknown here)
        self._max_documents = 1
        if base.startswith("amazon.titan-embed-text"):
            self.family = "titan"
        elif base.startswith("cohere.embed"):
            self.family, self._max_documents = "cohere", _COHERE_BATCH
        if ndims is not None:
            whole(ndims, "ndims", minimum=1)
        takes_size = base.startswith(("amazon.titan-embed-text-v2", "cohere.embed-v4"))
        if ndims is not None and self.family is not None and not takes_size and ndims != _NDIMS.get(base):
            raise InvalidRequestError(f"{self.provider}: {model} has one vector size ({_NDIMS.get(base)}); "
                                      f"it cannot make {ndims}")
        if input_type not in COHERE_INPUT_TYPES:
            raise InvalidRequestError(f"{self.provider}: input_type must be one of {', '.join(COHERE_INPUT_TYPES)}, "
                                      f"not {input_type!r}")
        self.input_type = input_type
        self.normalize = bool(normalize)
        self._requested_ndims = ndims if takes_size else None
        self._ndims = ndims or _NDIMS.get(base)
        self._path = wire.model_path(self.provider, model, "invoke")
        self._is_titan_v2 = base.startswith("amazon.titan-embed-text-v2")

    def with_input_type(self, input_type: str) -> EmbeddingModel:
        """The same Cohere model embedding for another purpose ("search_query" for the text you search with)."""
        return EmbeddingModel(self.client, self.model, self._requested_ndims, input_type=input_type,
                              normalize=self.normalize)

    def _invoke(self, body: dict[str, Any]) -> tuple[Any, int | None]:
        answer = self._send("POST", self._path, "embeddings", json=body, headers={"Accept": "application/json"})
        counted = answer.headers.get("x-amzn-bedrock-input-token-count", "")
        data = answer.json()
        wire.refuse_error_body(data, "embeddings answer", self.provider)
        return data, int(counted) if counted.isdigit() else None

    def _embed_chunk(self, texts: list[str]) -> list[list[float]]:
        if self.family is None:
            raise UnsupportedFeature(f"{self.provider}: embeddings know Titan text (amazon.titan-embed-text-*) and "
                                     f"Cohere (cohere.embed-*) models, not {self.model!r}")
        if self.family == "titan":
            (text,) = texts
            request = wire.TitanRequest(text, self._requested_ndims,
                                        self.normalize if self._is_titan_v2 else None)
            data, counted = self._invoke(_wire.encode(wire.converter, request))
            titan = _wire.decode(wire.converter, data, wire.TitanResponse, self.provider)
            tokens = titan.inputTextTokenCount if titan.inputTextTokenCount is not None else counted
            vectors = [titan.embedding]
        else:
            cohere = wire.CohereRequest(texts, self.input_type, self._requested_ndims)
            data, tokens = self._invoke(_wire.encode(wire.converter, cohere))
            vectors = _wire.decode(wire.converter, data, wire.CohereResponse, self.provider).vectors()
        if tokens is not None:
            self._report("embeddings", Usage(tokens, 0, tokens))
        return vectors


@attrs.frozen(kw_only=True)
class BedrockOptions(ProviderOptions):
    """The region (else AWS_REGION / AWS_DEFAULT_REGION, the base URL's host or the AWS profile's),
    and AWS credentials for SigV4 in place of a Bedrock API key: keys, a profile, or a botocore
    credentials object. None of them: botocore's credential chain (its variables, ~/.aws, roles)."""

    region: str | None = option(env=("AWS_REGION", "AWS_DEFAULT_REGION"))
    aws_access_key_id: str | None = option(secret=True)
    aws_secret_access_key: str | None = option(secret=True)
    aws_session_token: str | None = option(secret=True)
    aws_profile: str | None = option()
    credentials: Any = option(secret=True)


class Client(ProviderClient, CompletionClient, EmbeddingsClient):
    """An Amazon Bedrock Runtime client for one region: a Bedrock API key, or AWS credentials (SigV4)."""

    provider: ClassVar[str] = "bedrock"
    default_base_url: ClassVar[str] = "https://bedrock-runtime.{region}.amazonaws.com"  # shown; filled in per client
    env_api_key: ClassVar[tuple[str, ...]] = ("AWS_BEARER_TOKEN_BEDROCK",)
    env_base_url: ClassVar[tuple[str, ...]] = ("BEDROCK_BASE_URL",)
    # Read by botocore's credential chain when no key is given (listed so that they are known).
    env_options: ClassVar[tuple[str, ...]] = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                                              "AWS_PROFILE")
    requires_api_key: ClassVar[bool] = False  # AWS credentials serve as well
    conventions: ClassVar[Conventions] = wire.CONVENTIONS

    region: str | None

    Options = BedrockOptions
    options: BedrockOptions

    def resolve_access(self, api_key: str | None, base_url: str | None, auth: Auth | None) -> Access:
        options = self.options
        signing = [name for name in ("aws_access_key_id", "aws_secret_access_key", "aws_session_token",
                                     "aws_profile", "credentials") if getattr(options, name) is not None]
        api_key = (api_key or "").strip() or None  # blank: no key, so AWS credentials
        given = [name for name, on in (("an API key", api_key is not None), (" / ".join(signing), bool(signing)),
                                       ("auth=", auth is not None)) if on]
        if len(given) > 1:
            raise ClientBuildError(f"bedrock: pass one kind of credentials, not {' and '.join(given)}")
        if not given:  # nothing passed: a Bedrock API key from the environment, else botocore's chain
            api_key = env_value(self.env_api_key)
        if base_url is None:
            base_url = env_value(self.env_base_url) or self.default_base_url
        region = options.region
        if region is None and base_url != self.default_base_url:
            found = _REGION_IN_HOST.search(base_url)
            region = found.group(1) if found else None
        if api_key is None and auth is None:
            sig = AwsSigV4Auth(region or self._profile_region(options.aws_profile), "bedrock",
                               access_key_id=options.aws_access_key_id, secret_access_key=options.aws_secret_access_key,
                               session_token=options.aws_session_token, credentials=options.credentials,
                               profile=options.aws_profile)
            region, auth = sig.region, sig
        if region is not None and not _REGION.fullmatch(region):
            raise ClientBuildError(f"bedrock: region {region!r} is not an AWS region (e.g. 'us-east-1', 'eu-west-3')")
        if base_url == self.default_base_url:
            if region is None:
                raise ClientBuildError("bedrock: no region. Pass region='us-east-1', set AWS_REGION (or "
                                       "AWS_DEFAULT_REGION), or pass base_url= / set BEDROCK_BASE_URL")
            base_url = base_url.format(region=region)
        self.region = region
        return Access(api_key, base_url, auth)

    def _profile_region(self, profile: str | None) -> str:
        """The region of the AWS profile (~/.aws/config), for a client that signs and was given none."""
        from ._sigv4 import import_botocore

        botocore = import_botocore(self.provider)
        try:
            region = botocore.session.Session(profile=profile).get_config_variable("region")
        except Exception:  # noqa: BLE001 - a missing profile: said when the credentials are read
            region = None
        if not isinstance(region, str) or not region:
            raise ClientBuildError("bedrock: no region. Pass region='us-east-1' or set AWS_REGION (or "
                                   "AWS_DEFAULT_REGION, or a region in the AWS profile)")
        return region

    def make_auth(self, api_key: str) -> Auth:
        return BearerAuth(api_key)  # a Bedrock API key

    def completion_model(self, model: str) -> CompletionModel:
        return CompletionModel(self, model)

    def embedding_model(self, model: str, ndims: int | None = None, *, input_type: str = "search_document",
                        normalize: bool = True) -> EmbeddingModel:
        return EmbeddingModel(self, model, ndims, input_type=input_type, normalize=normalize)

    def __repr__(self) -> str:
        return f"bedrock.Client(region={self.region!r}, base_url={shown_url(self.base_url)!r})"


ClientBuilder = Client.Builder
