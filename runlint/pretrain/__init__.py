"""Before training (needs torch): ``gradcheck`` and ``sanity``, and the model factories."""
