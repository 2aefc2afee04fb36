"""train.py with the tests' fault injections, set through environment variables (inert when they are unset):

    NEOX_METALA_TEST_NAN_ITERATIONS="5,6,7"      those iterations' loss is NaN (the non-finite guards)
    NEOX_METALA_TEST_PAUSE_SAVE_ITERATIONS="12"  step 12's save waits 60 s after DeepSpeed's files, before the RNG
                                                 state and the completion marker (a kill there leaves a folder
                                                 with weights that must not be resumed from)
    NEOX_METALA_TEST_PAUSE_SAVE_SECONDS="8"      how long those saves wait instead of 60 s (a slow save that must
                                                 complete)

The hooks live here, not in the package: production code reads no test variables. Run it where train.py runs
(`python tests/training/hooked_train.py -d DIR a.yml`, or as deepy.py's user script).
"""

import logging
import os
import sys
import time
from pathlib import Path

NAN_TEST_HOOK = "NEOX_METALA_TEST_NAN_ITERATIONS"
SAVE_PAUSE_TEST_HOOK = "NEOX_METALA_TEST_PAUSE_SAVE_ITERATIONS"
SAVE_PAUSE_SECONDS_TEST_HOOK = "NEOX_METALA_TEST_PAUSE_SAVE_SECONDS"
SCRIPT = Path(__file__).resolve()


def _iterations(variable: str) -> set[int]:
    return {int(i) for i in os.environ.get(variable, "").split(",") if i}


def install_hooks() -> None:
    from neox_metala.training import checkpoint, trainer

    poisoned = _iterations(NAN_TEST_HOOK)
    if poisoned:
        original_init = trainer.Trainer.__init__

        def init_with_poison(self, args):
            original_init(self, args)
            self.nan_test_iterations = poisoned

        trainer.Trainer.__init__ = init_with_poison
    held = _iterations(SAVE_PAUSE_TEST_HOOK)
    if held:
        seconds = float(os.environ.get(SAVE_PAUSE_SECONDS_TEST_HOOK, "60"))
        logger = logging.getLogger(__name__)

        def pause(iteration: int) -> None:
            if iteration in held:
                logger.warning(
                    "%s: holding the save of iteration %d for %g s", SAVE_PAUSE_TEST_HOOK, iteration, seconds
                )
                time.sleep(seconds)
                logger.warning("%s: released the save of iteration %d", SAVE_PAUSE_TEST_HOOK, iteration)

        checkpoint.after_engine_files = pause


if __name__ == "__main__":
    sys.path.insert(0, str(SCRIPT.parents[2]))  # the repository, as for train.py
    install_hooks()
    from neox_metala.training.trainer import main

    sys.exit(main())
