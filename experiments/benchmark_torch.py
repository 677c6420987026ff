"""The benchmark's PyTorch reference (used only when torch is importable).

The same students as the engine — same teacher, training pools, initial parameters and test set,
all drawn by JAX and handed over as arrays — trained the way a PyTorch user packs many small
models: for each n, the seeds' students stacked on a leading axis (S, ...), the forward pass in
`torch.baddbmm`, one `torch.optim.Adam` over the stacks and the loss summed over students. Adam
is elementwise and the summed loss gives each student its own gradient, so every stacked
student trains exactly as it would alone (full batch, constant learning rate, the fixed step
budget: the benchmark's cells never stop early).
"""

import os
import time

import numpy as np

from teacher_student import data as data_lib
from teacher_student import evaluation

# PyTorch's OpenMP threads sleep between its parallel regions instead of spinning (set before it
# is imported): spinning, they take cores from the JAX methods timed next in the same process.
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
try:
  import torch
except ImportError:   # the benchmark reports the PyTorch column as absent
  torch = None


def available() -> bool:
  return torch is not None


def _activation(name):
  return {'relu': torch.relu, 'tanh': torch.tanh, 'gelu': torch.nn.functional.gelu, 'erf': torch.erf}[name]


def _stacked_params(student, seeds, dtype):
  """[(kernel_sio, bias_s1o)] per layer: the seeds' initial parameters (JAX draws) stacked."""
  per_seed = [student.init(data_lib.member_keys(seed, 0)[0], dtype)['params'] for seed in seeds]
  layers = []
  for i in range(len(per_seed[0])):
    kernel = np.stack([np.asarray(p[f'Dense_{i}']['kernel']) for p in per_seed])
    bias = np.stack([np.asarray(p[f'Dense_{i}']['bias']) for p in per_seed])[:, None, :]
    layers.append((torch.tensor(kernel, requires_grad=True), torch.tensor(bias, requires_grad=True)))
  return layers


def _forward(layers, act, x_snd):
  h = x_snd
  for i, (kernel, bias) in enumerate(layers):
    h = torch.baddbmm(bias, h, kernel)
    if i < len(layers) - 1:
      h = act(h)
  return h


def train(student, train, *, seeds, ns, x_test, y_test) -> dict:
  """Trains the (seeds × ns) MLP students; returns {'test_error': (S, N), 'run_seconds'}.

  Args mirror `sequential.train_sequential` (train.optimizer must be 'adam', schedule 'constant').
  The run time covers training and evaluation, not the hand-over of arrays from JAX.
  """
  if torch is None:
    raise RuntimeError('PyTorch is not installed (pip install torch)')
  if (train.optimizer, train.schedule, train.batch_size) != ('adam', 'constant', 0) or None in ns:
    raise ValueError('the PyTorch reference covers full-batch Adam at a constant learning rate, finite n')
  torch.set_num_threads(os.cpu_count() or 1)
  dtype = train.jnp_dtype
  act = _activation(student.spec.activation)
  pools = [data_lib.train_pool(student.teacher, seed, max(ns), train.noise_std, dtype) for seed in seeds]
  x_pool = torch.tensor(np.stack([np.asarray(x) for x, _ in pools]))
  y_pool = torch.tensor(np.stack([np.asarray(y) for _, y in pools]))
  x_test_t, y_test_t = torch.tensor(np.asarray(x_test)), torch.tensor(np.asarray(y_test))
  y_var = float(evaluation.output_variance(y_test))
  inits = [_stacked_params(student, seeds, dtype) for _ in ns]
  test_error = np.zeros((len(seeds), len(ns)))
  t0 = time.perf_counter()
  for j, n in enumerate(ns):
    layers = inits[j]
    opt = torch.optim.Adam([p for layer in layers for p in layer], lr=train.learning_rate, eps=1e-8)
    x_snd, y_snk = x_pool[:, :n], y_pool[:, :n]
    for _ in range(train.steps):
      opt.zero_grad(set_to_none=True)
      # Σ over students of the normalized training error (each student's own mean over n, k).
      loss = ((_forward(layers, act, x_snd) - y_snk) ** 2).mean(dim=(1, 2)).sum() / y_var
      loss.backward()
      opt.step()
    with torch.no_grad():
      x = x_test_t.expand(len(seeds), *x_test_t.shape)
      test_error[:, j] = (((_forward(layers, act, x) - y_test_t) ** 2).mean(dim=(1, 2)) / y_var).numpy()
  return {'test_error': test_error, 'run_seconds': time.perf_counter() - t0}


def version() -> str | None:
  return None if torch is None else torch.__version__
