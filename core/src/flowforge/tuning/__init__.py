"""Schedule tuning: fit a solver's time grid to a model at a fixed nfe, save it, reuse it.

    from flowforge.tuning import load_schedule, tune_schedule
    tuned = tune_schedule(model, x_pilot, path="cond_ot", prediction="velocity",
                          solver="heun", nfe=9, budget=2000)
    tuned.save("heun9.json")
    x = flowforge.sample(model, noise, ..., solver="heun", nfe=9,
                         time_grid=load_schedule("heun9.json"))

See docs/tuning.md for the procedure and its budget.
"""

from flowforge.tuning.schedule import TunedSchedule, load_schedule
from flowforge.tuning.search import rms_error, tune_schedule

__all__ = ["TunedSchedule", "load_schedule", "rms_error", "tune_schedule"]
