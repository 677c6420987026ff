"""Every field of a study, with the quick CPU study's values. Presets start from this.

Field groups (each maps onto one spec of `teacher_student`):
  teacher.*   TeacherSpec       inputs.*   InputSpec       students.*  StudentSpec (+ widths)
  train.*     TrainSpec (+ matmul precision and divergence retries)
  data.*      the sample counts, the online column, the test set, label noise
  seeds       number of replicate seeds (0 .. seeds-1): data, initialization, mini-batches
  ablation.*  an optional knob (a dotted config field) swept over levels, one teacher per level
  decomposition.*  the extra runs the error decomposition needs (analysis.decompose)
  nyquist.*   a band-limited companion teacher (cutoff K on the cube [-1, 1]^dim; cutoff 0 = off)
              whose MLP students figure 6 sets beside the Nyquist learner
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.name = 'quick'
  c.teacher = ml_collections.ConfigDict(dict(
      family='mlp', depth=1, width=4, activation='relu', gain=1.4, bias_scale=0.3, out_dim=1,
      cutoff=2, seed=0, n_normalize=1 << 16))
  c.inputs = ml_collections.ConfigDict(dict(
      distribution='gaussian', dim=4, intrinsic_dim=0, embedding='random', seed=0))
  c.students = ml_collections.ConfigDict(dict(
      family='mlp', widths=(1, 2, 4, 8, 16, 32), depth=0, activation='', init='standard',
      gain=1.0, bias_scale=0.0))
  c.data = ml_collections.ConfigDict(dict(
      ns=(16, 32, 64, 128, 256, 512, 1024, 2048), online=True, n_test=1 << 14,
      test_seed=1 << 20, max_n=1 << 20, noise_std=0.0))
  c.seeds = 12
  c.train = ml_collections.ConfigDict(dict(
      optimizer='adam', learning_rate=1e-2, schedule='cosine', momentum=0.0, steps=4000,
      batch_size=0, tol=1e-9, plateau_rtol=0.0, patience=4, check_every=500, online_batch=256,
      dtype='float64', matmul_precision='highest', retry_lr_factor=0.25, max_retries=1,
      second_order=True, second_order_steps=1000, second_order_max_params=4096, lbfgs_steps=10_000,
      floor=1e-20, stationary_tol=1e-8))
  c.ablation = ml_collections.ConfigDict(dict(knob='', levels=()))
  c.decomposition = ml_collections.ConfigDict(dict(ensemble_members=4))
  c.nyquist = ml_collections.ConfigDict(dict(cutoff=4, dim=2, widths=(8, 16)))
  return c


def thesis() -> ml_collections.ConfigDict:
  """The full study, for accelerators: a deeper, wider teacher and a grid over 3–4 decades."""
  c = get_config()
  c.name = 'thesis'
  c.teacher.update(depth=2, width=16)
  c.inputs.dim = 16
  c.students.widths = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
  c.data.ns = tuple(2**k for k in range(4, 18))
  c.seeds = 8
  c.train.update(steps=20_000, check_every=1000, tol=1e-10)
  c.decomposition.ensemble_members = 8
  c.nyquist.update(cutoff=8, widths=(16, 64, 256, 1024))
  return c


def ablation(knob: str, levels: tuple, size: str = 'quick', **changes) -> ml_collections.ConfigDict:
  """A teacher-complexity ablation: `knob` (a dotted field) swept over `levels`.

  size='quick' is a CPU version (fewer widths, n's and seeds than the quick study, per level);
  size='full' starts from the thesis grid. `changes` are dotted fields set before the sweep.
  """
  if size not in ('quick', 'full'):
    raise ValueError(f'ablation size must be quick or full, got {size!r}')
  c = get_config() if size == 'quick' else thesis()
  c.name = f'ablation_{knob.replace(".", "_")}_{size}'
  c.nyquist.cutoff = 0           # the Nyquist companion belongs to the main studies
  c.decomposition.ensemble_members = 0   # the linearized U serves the ablations
  if size == 'quick':
    c.students.widths = (2, 4, 8, 16, 32)
    c.data.ns = (32, 128, 512, 2048)
    c.seeds = 3
    c.train.steps = 4000
  for field, value in changes.items():
    section, leaf = field.split('.')
    c[section][leaf] = value
  c.ablation.knob, c.ablation.levels = knob, tuple(levels)
  return c
