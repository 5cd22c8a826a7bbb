"""Whether a difference between two rates is beyond noise.

Each rate gets a 95% Wilson score interval (it stays inside 0..1 and behaves for small counts
and rates near 0 or 1, where the normal approximation does not); the difference of two rates
gets Newcombe's hybrid score interval (method 10 of Newcombe 1998), built from the two Wilson
intervals. A difference whose interval excludes 0 is reported as beyond noise.
"""

import math

Z95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, *, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of successes/trials; None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int, *, z: float = Z95
) -> tuple[float, float, float] | None:
    """(difference a - b, low, high) by Newcombe's hybrid score method; None without trials."""
    first = wilson_interval(successes_a, trials_a, z=z)
    second = wilson_interval(successes_b, trials_b, z=z)
    if first is None or second is None:
        return None
    pa, pb = successes_a / trials_a, successes_b / trials_b
    (la, ua), (lb, ub) = first, second
    difference = pa - pb
    low = difference - math.sqrt((pa - la) ** 2 + (ub - pb) ** 2)
    high = difference + math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)
    return difference, low, high
