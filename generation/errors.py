"""Every error easel raises on purpose: refused input, a stopped generation, unloadable weights, a full queue.

Each carries a stable `code` where a user may see it, and the values that explain it, so the chat layer can render
it in the user's language; `str()` is a complete English sentence for logs and the command line.
"""

from __future__ import annotations

from typing import Any, ClassVar


class EaselError(Exception):
    """The root of every error easel raises on purpose.

    One tree gives each adapter one boundary: whatever it catches as `EaselError` is an expected outcome to tell
    the user about, and anything else is a bug to log.
    """


RULES: dict[str, str] = {
    "whole_number": "a whole number from {low} to {high}",
    "number": "a number from {low:g} to {high:g}",
    "multiple_of_64": "a multiple of 64 between 64 and {high}",
    "max_pixels": "at most {pixels} pixels",
    "max_characters": "at most {limit} characters",
    "language_code": "an ISO 639 code such as en, ru or zh",
    "one_of": "one of {choices}",
    "needs_prompt": "{operation} needs a prompt describing the image",
    "needs_image": "{operation} needs an input image",
    "needs_mask": "inpaint needs a mask image, a transparent area or a region",
    "strength_img2img_only": "only img2img, remix and depth take a strength",
    "mask_inpaint_only": "only inpaint takes a mask",
    "items_mix_only": "only mix takes mix items",
    "image_operations_only": "only img2img, inpaint, outpaint, remix and depth take an input image",
    "outpaint_only": "only outpaint zooms out or pans",
    "zoom_or_pan": "a zoom or a pan, not both",
    "outpaint_sized_by_image": "outpaint takes its size from its image and the zoom or pan",
    "size_or_aspect": "a size or an aspect ratio, not both",
    "aspect_range": "a ratio from {low} to {high}, such as 16:9",
    "mix_texts_as_items": "mix takes its texts as mix items, each with a weight",
    "min_strength": "with {steps} steps the strength must be at least {strength:.3g} so that at least one step runs",
    "mix_count": "from {low} to {high} images or texts",
    "weight_each": "one weight for each of the {count} mix items",
    "positive_weight": "at least one weight above zero",
    "text_not_empty": "a text item must not be empty",
    "number_list": "comma-separated numbers such as 0.5,0.3,0.2",
}
"""What a refused value must be, by rule, in English; the chat texts render the same rules from the catalogs
(`request.rule.<rule>`), so a refusal reaches every user in their language."""


class InvalidRequest(EaselError, ValueError):
    """A request value outside what the engine accepts; names the value (None where there is none to quote) and
    what is allowed, as a rule and its values."""

    def __init__(self, code: str, field: str, value: Any, rule: str, **values: Any) -> None:
        self.code = code
        self.field = field
        self.value = value
        self.rule = rule
        self.values = values
        allowed = RULES[rule].format(**values)
        super().__init__(f"{field}: {allowed}" if value is None else f"{field} {value!r} is not allowed: {allowed}")


class InvalidImage(EaselError, ValueError):
    """An input image or mask that cannot be used; `code` says why, and `values` what the user's text needs."""

    def __init__(self, code: str, message: str, **values: Any) -> None:
        self.code = code
        self.values = values
        super().__init__(message)


class GenerationCancelled(EaselError):
    """Raised inside the pipeline's step loop when the caller asked to stop."""


class ModelLoadError(EaselError):
    """Weights could not be loaded: a wrong id or path, no network, or an incomplete download."""


class QueueRefused(EaselError):
    """The queue will not take a job; `code` and `limit` let the chat layer say why in the user's language."""

    code: ClassVar[str]

    def __init__(self, limit: int, message: str) -> None:
        self.limit = limit
        super().__init__(message)


class UserQueueFull(QueueRefused):
    code = "user_queue_full"

    def __init__(self, limit: int) -> None:
        super().__init__(
            limit,
            f"You already have {limit} jobs waiting, the most one person may queue; please wait for one to start.",
        )


class QueueFull(QueueRefused):
    code = "queue_full"

    def __init__(self, limit: int) -> None:
        super().__init__(limit, f"The queue is full ({limit} jobs waiting); please try again in a little while.")
