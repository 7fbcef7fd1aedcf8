"""Train & Shrink: the canonical, tested code every chapter imports.

Modules are named after the concept they hold:

- ``validation``  argument checks shared by every module (clear ``ValueError``s)
- ``utils``       ``rel_error``, seeding, timing, ``TrainingDiverged``
- ``data``        synthetic data, the handwritten digits, mini-batches
- ``losses``      MSE, binary and softmax cross-entropy, each with its gradient
- ``regression``  linear and softmax regression models (chapter 1)
- ``gd``          gradient-descent steps and training loops (chapter 1)
- ``nn``          layers with forward/backward, ``MLP``, the torch bridge, ``fit`` (chapter 2)
- ``gradcheck``   centred-difference gradient checking for any function or layer
- ``optim``       torch.optim's optimizers and schedulers, NumPy reference + numba (chapter 3)
- ``quant``       quantization: PyTorch's affine maps to the bit, observers, fake quant, int8 layers (chapter 5)
- ``kernels``     numba kernels, each beside its NumPy twin
- ``plots``       the course's figure style
- ``widgets``     ipywidgets explorers that also render as static figures
- ``grade``       exercise generation and the auto-grader
"""

__version__ = "0.1.0"
