"""User-facing texts, by message key.

English only for now, kept in one place so that the multilingual work can swap this table for
gettext catalogs without touching the callers.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

MESSAGES: dict[str, str] = {
    "failed": "Sorry, job {job_id} failed. Please try again; if it keeps failing, quote reference {job_id}.",
    "cancelled": "Job {job_id} was cancelled; it did not count against your quota.",
    "cancel.queued": "Job {job_id} was removed from the queue.",
    "cancel.running": "Job {job_id} will stop at its next step.",
    "error.internal": "Sorry, something went wrong on our side (reference {reference}).",
    "request.invalid": "That request cannot be made: {detail}.",
    "request.bad_option": "The option {option} needs {expected}; got {value!r}.",
    "request.unknown_option": "There is no option {option}. Options: {known}.",
    "image.not_an_image": "That file is not an image I can read.",
    "image.truncated_image": "That image is damaged or incomplete; please send it again.",
    "image.image_too_large": "That image is too large: {detail}.",
    "image.empty_mask": "The mask marks nothing to repaint: white areas of a mask are repainted.",
    "image.no_alpha": "That image has no transparent pixels to use as a mask.",
    "image.bad_region": "That region cannot be used: {detail}.",
    "image.unreadable_file": "I could not read {path}.",
    "queue.user_full": "You already have {limit} requests waiting; please wait for one to finish.",
    "queue.full": "The queue is full ({limit} requests); please try again in a few minutes.",
    "queue.refused": "The queue cannot take your request right now; please try again later.",
    "quota.images": "You have used your {limit} images for today; the quota resets at midnight UTC.",
    "quota.gpu_seconds": "You have used your {limit} GPU-seconds for today; the quota resets at midnight UTC.",
    "quota.status": (
        "Today you have made {images} of {images_limit} images and used {seconds:.0f} of {seconds_limit} GPU-seconds."
    ),
    "user.banned": "You cannot make images here{until}. Reason: {reason}.",
    "job.not_found": "There is no job {job_id}.",
    "job.not_yours": "Job {job_id} belongs to someone else; you can only change your own jobs.",
    "job.not_cancellable": "Job {job_id} is already {state}.",
    "job.ambiguous": "More than one of your jobs starts with {job_id}; please give more of its id.",
    "job.none_active": "You have no job waiting or running.",
    "job.not_finished": "Job {job_id} is not finished yet; cancel it instead.",
    "settings.unknown": "{option} cannot be a personal default.",
    "job.no_images": "Job {job_id} has no images to vary.",
    "job.no_such_image": "Job {job_id} has no image {number}: it has {count}.",
    "status.queued": "Queued: number {position} in line, ready in about {eta}.",
    "status.started": "Drawing your image…",
    "status.progress": "Drawing your image… {percent}%",
    "result.caption": "{prompt}\nseed {seeds} · job {job_id}",
    "eta.moment": "a moment",
    "eta.seconds": "{seconds} s",
    "eta.minutes": "{minutes} min",
    "button.reroll": "Reroll",
    "button.variations": "Variations",
    "button.variation_of": "Variations {number}",
    "button.edit": "Edit",
    "button.cancel": "Cancel",
    "button.delete": "Delete",
    "edit.ask": "Reply to this image with what to change, and I will redraw it.",
    "deleted": "Deleted job {job_id}.",
    "queue.empty": "You have nothing waiting or drawing.",
    "queue.line": "{job_id} · {state} · number {position} in line, about {eta} · {prompt}",
    "queue.running_line": "{job_id} · drawing now · {prompt}",
    "settings.show": "Your defaults: {values}.",
    "settings.none": "You have no defaults of your own; requests use the bot's.",
    "settings.saved": "Saved. Your defaults: {values}.",
    "settings.reset": "Your defaults are cleared.",
    "discord.command.imagine": "Draw images from a description",
    "discord.command.edit": "Redraw an image after a description",
    "discord.command.inpaint": "Repaint part of an image",
    "discord.command.mix": "Blend two to four images, and a text if you like",
    "discord.command.history": "Your recent images",
    "discord.command.quota": "What you have used of today's quota",
    "discord.command.queue": "Your images waiting or being drawn, with their place in line",
    "discord.command.cancel": "Cancel one of your images that is waiting or being drawn",
    "discord.command.edit_image": "Edit image",
    "discord.option.prompt": "What to draw; options such as --steps 30 may follow",
    "discord.option.negative": "What to keep out of the image",
    "discord.option.size": "Width x height in pixels",
    "discord.option.steps": "Denoising steps: more is slower and finer",
    "discord.option.guidance": "How closely to follow the prompt",
    "discord.option.seed": "The same seed and prompt give the same image",
    "discord.option.count": "How many images, 1 to 4",
    "discord.option.image": "The image to start from",
    "discord.option.change": "What the image should become",
    "discord.option.strength": "How much to change, from 0 (nothing) to 1 (everything)",
    "discord.option.mask": "White areas are repainted; a PNG's transparent pixels also count as the mask",
    "discord.option.region": "Or the area to repaint as X,Y,W,H in percent",
    "discord.option.mix_image": "An image to blend",
    "discord.option.mix_prompt": "A text to blend in as well",
    "discord.option.weights": "One weight per item in order (images, then the text), such as 0.6,0.4",
    "discord.option.job": "The job id (or its first characters); your newest job when left out",
    "discord.modal.title": "Edit image",
    "discord.modal.prompt": "What should change?",
    "discord.modal.image": "Which image, 1 to {count}",
    "discord.received": "Got it…",
    "discord.not_a_result": "That message is not one of my images, so there is nothing to edit.",
    "discord.attachment.not_image": "{name} is not an image (it is {content_type}).",
    "discord.attachment.too_large": "{name} is {size_mb:.1f} MB; images of at most {limit_mb:g} MB can be used.",
    "discord.attachment.unreadable": "I could not download {name}; please send it again.",
    "discord.missing_permissions": "I cannot post results in this channel: I need the permissions {permissions}.",
    "discord.forbidden": "Discord did not let me do that: I am missing a permission in this channel.",
    "discord.command_mismatch": (
        "Discord sent /{command} with options that do not match the bot's; its commands need to be synced again."
    ),
    "discord.mix_too_few": "A mix needs at least {minimum} images; this one has {count}.",
    "discord.bad_weights": "The weights must be numbers separated by commas, such as 0.6,0.4; got {value!r}.",
    "discord.bad_image_number": "Which image? A number from 1 to {count}; got {value!r}.",
    "discord.late_result": "{mention} {caption}",
    "discord.late_notice": "{mention} {text}",
    "usage.imagine": "Tell me what to draw, for example: /imagine a lighthouse at dawn --size 768x512",
    "upload.not_an_image": "That file is not an image; please send a photo or a picture file (PNG, JPEG, WebP).",
    "upload.too_large": "That file is {size_mb} MB; I can take files up to {limit_mb} MB.",
    "upload.failed": "I could not fetch that file; please send it again.",
    "album.too_many": "An album can mix {limit} pictures at most; this one has {count}.",
    "telegram.help": (
        "Send me a description in any language and I will draw it. Options may follow it:\n"
        "  --size 768x512  --steps 30  --seed 42  --count 2  --guidance 5  --neg blurry, dark\n\n"
        "A photo with a caption: I redraw the photo after the caption (--strength 0.3 keeps more of it).\n"
        "Reply to one of my images with new words to change it.\n"
        "/edit prompt, in reply to any photo: the same.\n"
        "/inpaint prompt, in reply to a photo, sent with a second picture: white in the second one is repainted; "
        "or /inpaint --region X,Y,W,H prompt (in percent); or a PNG file whose transparent pixels mark what "
        "to repaint, with the prompt as its caption.\n"
        "An album of 2-4 photos mixes them; its caption is mixed in as text, --weights 0.5,0.3,0.2 sets shares.\n"
        "Buttons under each image: Reroll (new seed), Variations, Edit.\n\n"
        "/history your recent images · /queue your waiting requests · /quota what is left today\n"
        "/cancel [id] stop a request · /settings --size 512x512 --steps 30 your own defaults (/settings reset)\n"
        "In groups, mention me, reply to me, or use /imagine."
    ),
    "telegram.photo_needs_caption": "Add a caption saying what to draw, and I will redraw the photo after it.",
    "telegram.reply_to_photo": "Send {command} with a photo, or as a reply to one, followed by a prompt.",
    "telegram.mix_usage": (
        "To mix pictures, send 2 to 4 photos as one album. Its caption (optional) is mixed in as text, "
        "and --weights 0.5,0.5 sets each item's share."
    ),
    "telegram.unknown_command": "I do not know {command}. Send /help to see what I can do.",
    "telegram.unsupported": "I work with text, photos and picture files. Send /help to see how.",
    "telegram.command.imagine": "Draw an image from a description",
    "telegram.command.edit": "Redraw a photo after a prompt (reply to it)",
    "telegram.command.inpaint": "Repaint part of a photo (reply to it)",
    "telegram.command.mix": "How to mix 2-4 pictures",
    "telegram.command.history": "Your recent images",
    "telegram.command.queue": "Your waiting requests",
    "telegram.command.quota": "What is left of today's quota",
    "telegram.command.cancel": "Cancel a request",
    "telegram.command.settings": "Your own defaults (size, steps...)",
    "telegram.command.help": "How to use this bot",
    "history.empty": "You have no images yet.",
    "history.line": "{job_id}  {state:<9}  {operation:<7}  seed {seed}  {prompt}",
}


def render(key: str, language: str | None = None, **values: Any) -> str:
    """The text for `key`; an unknown key or a missing value is a bug, logged, but the user still gets a line."""
    template = MESSAGES.get(key)
    if template is None:
        log.error("no text for message key %r", key)
        return f"{key} {values}"
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        log.exception("text %r cannot take %r", key, values)
        return f"{template} {values}"
