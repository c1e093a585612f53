# Runs in the student's kernel after the last student cell. It finds the Keras model the notebook
# built and displays its architecture (Keras JSON config) under a private MIME type. The grader
# believes nothing else it says: the config is re-checked and rebuilt outside the kernel.
def __flowers_grader_extract():
    import json
    import sys

    from IPython import get_ipython
    from IPython.display import display

    keras = sys.modules.get("keras")
    found, candidates, error = None, [], None
    if keras is None:
        error = "the notebook never imported Keras or TensorFlow"
    else:
        names = {}
        for name, value in list(get_ipython().user_ns.items()):
            if not name.startswith("_") and isinstance(value, keras.Model):
                names.setdefault(id(value), []).append(name)
        candidates = sorted(min(group) for group in names.values())
        namespace = get_ipython().user_ns
        if isinstance(namespace.get("model"), keras.Model):
            found = "model"
        elif len(candidates) == 1:
            found = candidates[0]
    payload = {"variable": found, "candidates": candidates, "error": error, "config": None}
    if found is not None:
        try:
            payload["config"] = get_ipython().user_ns[found].to_json()
        except Exception as exc:  # the grader reports it; the kernel must not raise here
            payload["error"] = f"{type(exc).__name__}: {exc}"
    display({"application/vnd.flowers-grader.model+json": payload}, raw=True)


__flowers_grader_extract()
del __flowers_grader_extract
