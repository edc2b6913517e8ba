"""What a request costs the GPU, in one unit the scheduler and the quotas share.

One unit is one decoder step on a 512x512 image. The decoder's work grows with the pixels; the
prior's does not (it denoises one embedding), and one prior step costs about a tenth of a decoder
step at that size.
"""

from __future__ import annotations

from generation.requests import GenerationRequest

REFERENCE_PIXELS = 512 * 512
PRIOR_STEP_COST = 0.1


def job_cost(request: GenerationRequest) -> float:
    decoder = request.width * request.height / REFERENCE_PIXELS * request.denoising_steps
    prior = request.prior_runs * request.prior_denoising_steps * PRIOR_STEP_COST
    return request.count * (decoder + prior)
