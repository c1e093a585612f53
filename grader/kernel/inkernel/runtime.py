"""The runtime emulation, executed inside the student's kernel as a private module.

The grader never imports this file. The prelude cell (``prelude.py``) executes its text into a
fresh module registered as ``_flowers_grader_state``, so none of these names reach the
notebook's namespace; :func:`install` then prepares the kernel so that code written for Colab and
a TPU behaves as it would on a machine without a TPU, reading the grader's local data:

- ``TPUClusterResolver()`` and ``.connect()`` raise ValueError, as they do with no TPU, so the
  notebook's own ``except ValueError`` falls back to the default or Mirrored strategy; ``tpu`` is
  predefined as None for notebooks that test it after assigning it only in the try block;
- Colab's TPU sample, which has no fallback, runs too: ``COLAB_TPU_ADDR`` holds an address, a
  resolver for an explicit address answers, connecting and initializing do nothing, and
  ``TPUStrategy`` of that resolver is the default strategy (recorded: the result says so);
- ``MirroredStrategy()`` with no GPU is the default strategy (one replica either way; the
  one-CPU mirror crashes TensorFlow now and then);
- ``google.colab`` (auth, drive, files, output) imports, and its functions do nothing;
- gs:// paths under a mirrored prefix read the grader's local shards (tf.io.gfile, TFRecord
  datasets, Dataset.list_files, tf.io.read_file, tf.io.matching_files);
- shell escapes (!cmd) and shell or Colab-only magics do nothing (the grader lists them as
  warnings, from the notebook's source);
- ``Model.fit`` records what was asked and runs one step of one epoch, with the notebook's own
  callbacks, so that History has the keys later cells read; only the grader's training counts;
- keras.applications builders never download weights, and loading weights is recorded;
- ``get_file`` of a download the exercise serves ([downloads]) reads the local copy, and
  TFDS's data directory is the prepared ``tf_flowers`` beside the data, when there is one.
"""

import builtins
import functools
import os
import re
import sys
import threading
import types

NO_TPU = "Please provide a TPU Name to connect to."
EMULATED_TPU = "10.0.0.2:8470"   # what Colab's TPU runtimes put in COLAB_TPU_ADDR
TPU_ADDRESS = re.compile(r"^(grpc://)?[\w.-]+:\d+$")   # an explicit address, not a TPU's name
COLAB_PARTS = {"auth": ["authenticate_user"], "drive": ["mount", "flush_and_unmount"],
               "files": ["upload", "download"], "output": ["clear", "enable_custom_widget_manager"]}

# What the extraction cell reads back (this module is registered as _flowers_grader_state).
fit_calls = []
emulated_tpu = []    # the addresses a notebook connected to
last_fit_model = None
applications = []
loaded_weights = []


def disguise(wrapper, original):
    """Give a wrapper the name, docstring and signature of what it replaces."""
    functools.update_wrapper(wrapper, original)
    return wrapper


def nothing(*args, **kwargs):
    return None


def install_colab():
    """google.colab and its sub-modules import, and do nothing."""
    colab = types.ModuleType("google.colab")
    sys.modules["google.colab"] = colab
    for part, names in COLAB_PARTS.items():
        module = types.ModuleType(f"google.colab.{part}")
        for name in names:
            setattr(module, name, nothing)
        sys.modules[module.__name__] = module
        setattr(colab, part, module)
    try:
        import google
        google.colab = colab
    except ImportError:
        pass


def install_magics(ip, allowed):
    """Shell escapes do nothing; magics run only when allowed (and known)."""
    from IPython.utils.text import SList

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


def mirror_functions(tf, mirror, unmapped):
    """(local, local_any): map gs:// paths (strings, lists, tensors, datasets) to local ones."""
    prefixes = sorted(mirror.items(), key=lambda item: -len(item[0]))

    def local(path):
        if isinstance(path, bytes):
            path = path.decode()
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, str) or not path.startswith("gs://"):
            return path
        for prefix, folder in prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return folder + path[len(prefix):]
        raise FileNotFoundError(unmapped.format(path=path, prefix=path.rsplit("/", 1)[0]))

    def local_tensor(value):
        for prefix, folder in prefixes:
            value = tf.strings.regex_replace(value, "^" + prefix.replace(".", r"\.") + "/",
                                             folder + "/")
        return value

    def local_any(value):
        if isinstance(value, (list, tuple)):
            return type(value)(local_any(v) for v in value)
        if isinstance(value, tf.data.Dataset):
            return value.map(local_tensor)
        if tf.is_tensor(value):
            return local_tensor(value)
        return local(value)

    return local, local_any


def same_identity(replacement, original):
    for attribute in ("__name__", "__qualname__", "__module__", "__doc__"):
        setattr(replacement, attribute, getattr(original, attribute))
    return replacement


def install_mirror(tf, mirror, unmapped):
    """tf.io.gfile, TFRecordDataset, list_files, read_file and matching_files read gs://
    paths from the local mirror."""
    _, local_any = mirror_functions(tf, mirror, unmapped)

    def mapped(function):
        def wrapper(path, *args, **kwargs):
            return function(local_any(path), *args, **kwargs)
        return disguise(wrapper, function)

    gfile = tf.io.gfile
    for name in ("glob", "exists", "isdir", "listdir", "stat", "walk", "GFile"):
        setattr(gfile, name, mapped(getattr(gfile, name)))
    tf.io.read_file = mapped(tf.io.read_file)
    tf.io.matching_files = mapped(tf.io.matching_files)
    tf.data.Dataset.list_files = staticmethod(mapped(tf.data.Dataset.list_files))
    original = tf.data.TFRecordDataset

    class TFRecordDataset(original):
        def __init__(self, filenames, *args, **kwargs):
            super().__init__(local_any(filenames), *args, **kwargs)

    tf.data.TFRecordDataset = same_identity(TFRecordDataset, original)


def install_downloads(tf, keras, downloads):
    """get_file of a URL the exercise serves reads its local copy (through a file:// origin, so
    caching, hash checks and extraction are Keras's own); any other URL goes to the network,
    which a grading machine does not have."""
    def served(original):
        def get_file(fname=None, origin=None, *args, **kwargs):
            local = downloads.get(origin)
            if local:
                fname = fname or os.path.basename(origin.split("?")[0])
                origin = "file://" + local
            return original(fname, origin, *args, **kwargs)
        return disguise(get_file, original)

    for module in (keras.utils, getattr(tf.keras, "utils", None)):
        if module is not None and hasattr(module, "get_file"):
            module.get_file = served(module.get_file)


def install_no_tpu(tf):
    """TPU detection fails the way it does on a machine without a TPU."""
    original = tf.distribute.cluster_resolver.TPUClusterResolver

    class TPUClusterResolver(original):
        def __new__(cls, tpu=None, *args, **kwargs):
            if isinstance(tpu, str) and TPU_ADDRESS.match(tpu):
                return EmulatedTPU(tpu)   # not a cls: __init__ is not called
            return super().__new__(cls)

        def __init__(self, *args, **kwargs):
            raise ValueError(NO_TPU)

        @classmethod
        def connect(cls, *args, **kwargs):
            raise ValueError(NO_TPU)

    tf.distribute.cluster_resolver.TPUClusterResolver = same_identity(TPUClusterResolver,
                                                                      original)


class EmulatedTPU:
    """The resolver of an explicit TPU address (Colab's TPU sample): it answers, and strategies
    built from it run on the default device."""

    def __init__(self, address):
        self.address = address
        emulated_tpu.append(address)

    def master(self, *args, **kwargs):
        return self.address

    get_master = master

    def cluster_spec(self):
        import tensorflow as tf
        return tf.train.ClusterSpec({"worker": [self.address.replace("grpc://", "")]})

    def num_accelerators(self, *args, **kwargs):
        return {"TPU": 8}


def install_emulated_tpu(tf):
    """Connecting to an EmulatedTPU (an explicit address: install_no_tpu), initializing it and
    TPUStrategy of it are the default device's (COLAB_TPU_ADDR is set by install)."""

    def passing(original):
        def call(cluster_resolver=None, *args, **kwargs):
            if isinstance(cluster_resolver, EmulatedTPU):
                return None
            return original(cluster_resolver, *args, **kwargs)
        return disguise(call, original)

    tf.config.experimental_connect_to_cluster = passing(tf.config.experimental_connect_to_cluster)
    tf.tpu.experimental.initialize_tpu_system = passing(tf.tpu.experimental.initialize_tpu_system)
    for module in (tf.distribute, tf.distribute.experimental):
        original = getattr(module, "TPUStrategy", None)
        if original is None:
            continue

        class TPUStrategy(original):
            def __new__(cls, tpu_cluster_resolver=None, *args, **kwargs):
                if isinstance(tpu_cluster_resolver, EmulatedTPU):
                    return tf.distribute.get_strategy()
                return super().__new__(cls)

        module.TPUStrategy = same_identity(TPUStrategy, original)


def install_cpu_mirror(tf):
    """MirroredStrategy() on a machine without a GPU is the default strategy.

    The codelab's notebooks fall back to MirroredStrategy when no TPU answers. With no GPU it
    mirrors one replica on the CPU, the default strategy's work, but TensorFlow then crashes
    now and then (SIGSEGV in a native thread) when evaluate() drops the data iterator that the
    predict() before it left: the kernel deaths of the codelab's playground notebook. The
    default strategy runs the same cells to the same results, without that crash.
    """
    original = tf.distribute.MirroredStrategy

    class MirroredStrategy(original):
        def __new__(cls, devices=None, cross_device_ops=None):
            if devices is None and not tf.config.list_physical_devices("GPU"):
                return tf.distribute.get_strategy()
            return super().__new__(cls)

    tf.distribute.MirroredStrategy = same_identity(MirroredStrategy, original)


def sliceable(value):
    if isinstance(value, (list, tuple)):
        return bool(value) and all(sliceable(v) for v in value)
    if isinstance(value, dict):
        return bool(value) and all(sliceable(v) for v in value.values())
    return hasattr(value, "shape") and hasattr(value, "__getitem__") \
        and type(value).__name__ not in ("DatasetV2", "_OptionsDataset") \
        and not hasattr(value, "element_spec")


def head(value, size):
    """The first ``size`` items of arrays (and lists, tuples, dicts of them)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return type(value)(head(v, size) for v in value)
    if isinstance(value, dict):
        return {k: head(v, size) for k, v in value.items()}
    return value[:size]


def install_fit(keras):
    """Model.fit records the request and runs one step of one epoch."""
    original = keras.Model.fit

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1, **kwargs):
        global last_fit_model
        fit_calls.append({"model": self.name, "epochs": epochs, "batch_size": batch_size,
                          "steps_per_epoch": steps_per_epoch,
                          "callbacks": [type(c).__name__ for c in callbacks or []]})
        last_fit_model = self
        size, steps, val_steps = batch_size or 32, None, None
        if sliceable(x):
            x, y, sample_weight = head(x, size), head(y, size), head(sample_weight, size)
        else:
            steps = 1
        if isinstance(validation_data, tuple) and sliceable(validation_data):
            validation_data = head(validation_data, validation_batch_size or size)
        elif validation_data is not None:
            val_steps = 1
        return original(self, x, y, batch_size=batch_size, epochs=1, verbose=verbose,
                        callbacks=callbacks, validation_split=validation_split,
                        validation_data=validation_data, shuffle=shuffle,
                        class_weight=class_weight, sample_weight=sample_weight,
                        steps_per_epoch=steps, validation_steps=val_steps,
                        validation_batch_size=validation_batch_size, **kwargs)

    keras.Model.fit = disguise(fit, original)


def install_applications(tf, keras):
    """keras.applications builders are built with weights=None; the request is recorded."""

    def application(builder):
        def wrapper(*args, **kwargs):
            applications.append({"name": builder.__name__,
                                 "weights": str(kwargs.get("weights", "imagenet"))})
            kwargs["weights"] = None
            return builder(*args, **kwargs)
        return disguise(wrapper, builder)

    def patch(module, seen):
        if id(module) in seen:
            return
        seen.add(id(module))
        for name, value in list(vars(module).items()):
            if isinstance(value, types.ModuleType) and value.__name__.startswith(module.__name__):
                patch(value, seen)
            elif callable(value) and name[:1].isupper() and not isinstance(value, type):
                setattr(module, name, application(value))

    seen = set()
    for module in (keras.applications, getattr(tf.keras, "applications", None)):
        if module is not None:
            patch(module, seen)


def install_weight_loading(tf, keras):
    """load_weights / load_model calls are recorded (the grader trains fresh weights anyway)."""

    def recorded(function, call):
        def wrapper(*args, **kwargs):
            source = args[1] if call == "load_weights" and len(args) > 1 else \
                (args[0] if args else kwargs.get("filepath", ""))
            loaded_weights.append({"call": call, "source": str(source)[:200]})
            return function(*args, **kwargs)
        return disguise(wrapper, function)

    keras.Model.load_weights = recorded(keras.Model.load_weights, "load_weights")
    for module in (keras.models, keras.saving, getattr(tf.keras, "models", None)):
        if module is not None and hasattr(module, "load_model"):
            module.load_model = recorded(module.load_model, "load_model")


def install(config, ip):
    """Everything above, in the kernel the prelude runs in. The TensorFlow and Keras part waits
    until the notebook has imported TensorFlow (by any import, then at the end of that import
    statement, or by the start of the next cell): a notebook that never does, or fails first,
    does not pay the seconds TensorFlow takes to import."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    if config.get("tfds_data_dir"):  # TFDS's tf_flowers, prepared offline (training/offline.py)
        os.environ["TFDS_DATA_DIR"] = config["tfds_data_dir"]
    ip.user_ns.setdefault("tpu", None)
    os.environ.setdefault("COLAB_TPU_ADDR", EMULATED_TPU)   # read before TensorFlow is imported
    install_colab()
    install_magics(ip, set(config["allowed_magics"]))
    waiting = [True]

    def when_imported(*args):
        # Only in the main thread, once TensorFlow's import has finished: a thread that
        # TensorFlow starts while it imports would otherwise patch a half-made module that the
        # import then overwrites.
        tf = sys.modules.get("tensorflow")
        spec = getattr(tf, "__spec__", None)
        if waiting[0] and tf is not None and not getattr(spec, "_initializing", False) \
                and threading.current_thread() is threading.main_thread():
            waiting[0] = False
            install_tensorflow(config)

    ip.events.register("pre_run_cell", when_imported)
    original, depth = builtins.__import__, threading.local()

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):
        depth.value = getattr(depth, "value", 0) + 1
        try:
            return original(name, globals, locals, fromlist, level)
        finally:
            depth.value -= 1
            if not depth.value and waiting[0]:
                when_imported()

    builtins.__import__ = disguise(__import__, original)


def install_tensorflow(config):
    import tensorflow as tf
    import keras

    install_mirror(tf, config["mirror"], config["unmapped_message"])
    install_downloads(tf, keras, config.get("downloads") or {})
    install_no_tpu(tf)
    install_emulated_tpu(tf)
    install_cpu_mirror(tf)
    install_fit(keras)
    install_applications(tf, keras)
    install_weight_loading(tf, keras)
