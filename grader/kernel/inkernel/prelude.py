# Runs in the student's kernel before the first student cell. The grader prepends two literals:
# `__flowers_grader_config` (the gs:// mirror, allowed magics) and `__flowers_grader_source` (the
# text of grader/kernel/inkernel/runtime.py). The runtime is executed into its own module, so
# none of its names reach the notebook's namespace; see runtime.py for what it emulates.
def __flowers_grader_boot(config, source):
    import sys
    import types

    from IPython import get_ipython

    module = types.ModuleType("_flowers_grader_state")
    module.__file__ = "<flowers-grader runtime>"
    sys.modules[module.__name__] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    module.install(config, get_ipython())


__flowers_grader_boot(__flowers_grader_config, __flowers_grader_source)  # noqa: F821
del __flowers_grader_boot, __flowers_grader_config, __flowers_grader_source
