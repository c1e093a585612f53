# Runs in the student's kernel before the first student cell. It makes code written for Colab and
# a TPU behave as it would on a machine without a TPU, reading the grader's local data:
#   - TPUClusterResolver() and .connect() raise ValueError, as they do with no TPU, so the
#     notebook's own `except ValueError` falls back to the default or Mirrored strategy; `tpu` is
#     predefined as None for notebooks that test it after assigning it only in the try block;
#   - google.colab (auth, drive, files, output) imports and its functions do nothing;
#   - gs:// paths under a mirrored prefix read the grader's local shards (tf.io.gfile, TFRecord
#     datasets, Dataset.list_files, tf.io.read_file, tf.io.matching_files);
#   - shell escapes (!cmd) and shell or Colab-only magics do nothing (the grader lists them as
#     warnings from the notebook's source);
#   - Model.fit records what was asked and runs one step of one epoch, with the notebook's own
#     callbacks, so that History has the keys later cells read; only the grader's training counts.
# The grader prepends `__flowers_grader_config = {...}` (the mirror map) to this text.
def __flowers_grader_prelude(config):
    import functools
    import os
    import sys
    import types

    os.environ.setdefault("MPLBACKEND", "Agg")
    state = types.ModuleType("_flowers_grader_state")
    state.fit_calls = []
    state.last_fit_model = None
    sys.modules["_flowers_grader_state"] = state
    ip = get_ipython()  # noqa: F821 - defined in every IPython kernel
    ip.user_ns.setdefault("tpu", None)

    def disguise(wrapper, original):
        functools.update_wrapper(wrapper, original)
        return wrapper

    # ---- google.colab
    def colab_module(name, **functions):
        module = types.ModuleType(name)
        for attribute, value in functions.items():
            setattr(module, attribute, value)
        sys.modules[name] = module
        return module

    def nothing(*args, **kwargs):
        return None

    colab = colab_module("google.colab")
    for part, functions in {"auth": ["authenticate_user"], "drive": ["mount", "flush_and_unmount"],
                            "files": ["upload", "download"], "output": ["clear", "enable_custom_widget_manager"]}.items():
        setattr(colab, part, colab_module(f"google.colab.{part}", **{f: nothing for f in functions}))
    try:
        import google
        google.colab = colab
    except ImportError:
        pass

    # ---- shell escapes and magics
    from IPython.utils.text import SList

    allowed = set(config["allowed_magics"])
    ip.system = disguise(lambda cmd, *a, **k: None, ip.system)
    ip.getoutput = disguise(lambda cmd, *a, **k: SList(), ip.getoutput)
    line_magic, cell_magic = ip.run_line_magic, ip.run_cell_magic

    def run_line_magic(magic_name, line, _stack_depth=1):
        if magic_name not in allowed or ip.find_line_magic(magic_name) is None:
            return None
        return line_magic(magic_name, line, _stack_depth + 1)

    def run_cell_magic(magic_name, line, cell):
        if magic_name not in allowed or ip.find_cell_magic(magic_name) is None:
            return None
        return cell_magic(magic_name, line, cell)

    ip.run_line_magic = disguise(run_line_magic, line_magic)
    ip.run_cell_magic = disguise(run_cell_magic, cell_magic)

    # ---- TensorFlow: TPU detection, gs:// mirror, fit
    try:
        import tensorflow as tf
    except ImportError:
        return
    mirror = sorted(config["mirror"].items(), key=lambda item: -len(item[0]))
    unmapped = config["unmapped_message"]

    def local(path):
        if isinstance(path, bytes):
            path = path.decode()
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path.startswith("gs://"):
            return path
        for prefix, folder in mirror:
            if path == prefix or path.startswith(prefix + "/"):
                return folder + path[len(prefix):]
        raise FileNotFoundError(unmapped.format(path=path, prefix=path.rsplit("/", 1)[0]))

    def local_any(value):
        if isinstance(value, (list, tuple)):
            return type(value)(local_any(v) for v in value)
        if isinstance(value, tf.data.Dataset):
            return value.map(local_tensor)
        if tf.is_tensor(value):
            return local_tensor(value)
        return local(value)

    def local_tensor(value):
        for prefix, folder in mirror:
            value = tf.strings.regex_replace(value, "^" + prefix.replace(".", r"\.") + "/",
                                             folder + "/")
        return value

    def mapped(function, *positions):
        def wrapper(*args, **kwargs):
            args = [local_any(a) if i in positions else a for i, a in enumerate(args)]
            return function(*args, **kwargs)
        return disguise(wrapper, function)

    gfile = tf.io.gfile
    for name in ("glob", "exists", "isdir", "listdir", "stat", "walk"):
        setattr(gfile, name, mapped(getattr(gfile, name), 0))
    gfile.GFile = mapped(gfile.GFile, 0)
    tf.io.read_file = mapped(tf.io.read_file, 0)
    tf.io.matching_files = mapped(tf.io.matching_files, 0)

    original_records = tf.data.TFRecordDataset

    class TFRecordDataset(original_records):
        def __init__(self, filenames, *args, **kwargs):
            super().__init__(local_any(filenames), *args, **kwargs)

    for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(TFRecordDataset, attribute, getattr(original_records, attribute))
    tf.data.TFRecordDataset = TFRecordDataset
    list_files = tf.data.Dataset.list_files
    tf.data.Dataset.list_files = staticmethod(mapped(list_files, 0))

    resolver = tf.distribute.cluster_resolver.TPUClusterResolver
    no_tpu = "Please provide a TPU Name to connect to."

    class TPUClusterResolver(resolver):
        def __init__(self, *args, **kwargs):
            raise ValueError(no_tpu)

        @classmethod
        def connect(cls, *args, **kwargs):
            raise ValueError(no_tpu)

    for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(TPUClusterResolver, attribute, getattr(resolver, attribute))
    tf.distribute.cluster_resolver.TPUClusterResolver = TPUClusterResolver

    import keras

    original_fit = keras.Model.fit

    def sliceable(value):
        if isinstance(value, (list, tuple)):
            return bool(value) and all(sliceable(v) for v in value)
        if isinstance(value, dict):
            return bool(value) and all(sliceable(v) for v in value.values())
        return hasattr(value, "shape") and hasattr(value, "__getitem__") \
            and not isinstance(value, tf.data.Dataset)

    def head(value, size):
        if value is None:
            return None
        if isinstance(value, (list, tuple)):
            return type(value)(head(v, size) for v in value)
        if isinstance(value, dict):
            return {k: head(v, size) for k, v in value.items()}
        return value[:size]

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, **kwargs):
        state.fit_calls.append({
            "model": self.name, "epochs": epochs, "batch_size": batch_size,
            "steps_per_epoch": steps_per_epoch,
            "callbacks": [type(c).__name__ for c in callbacks or []]})
        state.last_fit_model = self
        size = batch_size or 32
        steps = None if sliceable(x) else 1
        if steps is None:
            x, y, sample_weight = head(x, size), head(y, size), head(sample_weight, size)
        val_steps = None
        if isinstance(validation_data, tuple) and sliceable(validation_data):
            validation_data = head(validation_data, validation_batch_size or size)
        elif validation_data is not None:
            val_steps = 1
        return original_fit(self, x, y, batch_size=batch_size, epochs=1, verbose=verbose,
                            callbacks=callbacks, validation_split=validation_split,
                            validation_data=validation_data, shuffle=shuffle,
                            class_weight=class_weight, sample_weight=sample_weight,
                            steps_per_epoch=steps, validation_steps=val_steps,
                            validation_batch_size=validation_batch_size, **kwargs)

    keras.Model.fit = disguise(fit, original_fit)

    # ---- keras.applications: never download pretrained weights; record the request instead
    state.applications = []

    def application(builder):
        def wrapper(*args, **kwargs):
            state.applications.append({"name": builder.__name__,
                                       "weights": str(kwargs.get("weights", "imagenet"))})
            kwargs["weights"] = None
            return builder(*args, **kwargs)
        return disguise(wrapper, builder)

    def patch_applications(module, seen):
        if id(module) in seen:
            return
        seen.add(id(module))
        for name, value in list(vars(module).items()):
            if isinstance(value, types.ModuleType) and value.__name__.startswith(module.__name__):
                patch_applications(value, seen)
            elif callable(value) and name[:1].isupper() and not isinstance(value, type):
                setattr(module, name, application(value))

    seen = set()
    for module in (keras.applications, getattr(tf.keras, "applications", None)):
        if module is not None:
            patch_applications(module, seen)

    # ---- weights loaded from files: recorded (the grader trains fresh weights in any case)
    state.loaded_weights = []

    def recorded(function, call):
        def wrapper(*args, **kwargs):
            source = args[1] if call.endswith("load_weights") and len(args) > 1 else \
                (args[0] if args else kwargs.get("filepath", ""))
            state.loaded_weights.append({"call": call, "source": str(source)[:200]})
            return function(*args, **kwargs)
        return disguise(wrapper, function)

    keras.Model.load_weights = recorded(keras.Model.load_weights, "load_weights")
    for module in (keras.models, keras.saving, getattr(tf.keras, "models", None)):
        if module is not None and hasattr(module, "load_model"):
            module.load_model = recorded(module.load_model, "load_model")


__flowers_grader_prelude(__flowers_grader_config)  # noqa: F821 - prepended by the grader
del __flowers_grader_prelude, __flowers_grader_config
