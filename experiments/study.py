"""From a config to the grid of cells a sweep trains, validated before any compute (docs/design.md §4).

A cell is (kind, variant, width m, n, seed, member):
  kind     'student' — the study's students; 'ensemble' — K students of the teacher's own
           architecture started from independent prior draws and trained on the same sample
           (the uncertainty estimator (c) of docs/design.md §2): one cell per (n, seed), its K members
           (member 0..K-1) trained together; 'nyquist' — MLP students of a band-limited
           companion teacher (config.nyquist), the trained learners of figure 6;
  variant  the value of the ablation knob ({} without an ablation); each variant has its teacher;
  n        a sample count, or None for the online column (n = ∞, trained with the grid's n's);
  seed     the replicate's data seed; member: its initialization within an ensemble (0 otherwise).
Cells of one (kind, variant, width) form a group: one compiled program trains them together.
"""

import dataclasses
import hashlib
import json
from typing import Any

import ml_collections

from teacher_student import inputs, students, teachers
from teacher_student.train_spec import TrainSpec

# Fields that only size the grid: growing them adds cells, it does not change what a cell means.
# Students of widths up to this share one program (padded with inert units, students.Student.init):
# such small students are bound by per-step overhead, so merging them costs little run time and
# saves a compilation per width.
MERGE_WIDTHS_UP_TO = 16
GRID_FIELDS = ('students.widths', 'data.ns', 'data.online', 'seeds', 'ablation.levels',
               'decomposition.ensemble_members', 'nyquist.widths')
KINDS = ('student', 'ensemble', 'nyquist')
NYQUIST_LABEL = {'companion': 'nyquist'}


@dataclasses.dataclass(frozen=True)
class Variant:
  """One teacher of the study (the base config, or one value of the ablation knob)."""
  knob: tuple            # ((dotted field, value),) or ()
  teacher: teachers.TeacherSpec
  inputs: inputs.InputSpec
  train: TrainSpec
  config: Any            # the variant's full ConfigDict

  @property
  def label(self) -> dict:
    return dict(self.knob)

  def student(self, width: int) -> students.StudentSpec:
    """The resolved spec of this variant's students of `width`."""
    return students.resolve(_spec(students.StudentSpec, self.config.students, width=width), self.teacher)


@dataclasses.dataclass(frozen=True)
class Group:
  """Cells of one compiled program: every (width, n, replicate) of one (kind, variant, shape)."""
  kind: str
  variant: int
  student: students.StudentSpec   # the program's student (the largest of `widths`)
  train: TrainSpec
  ns: tuple              # sample counts; None is the online column
  replicates: tuple      # ((seed, member), ...): the cells' replicates
  members: int = 1       # students trained per replicate (ensemble members, as members 0..K-1)
  widths: tuple = ()     # the cells' student widths (default: the program's)

  @property
  def cell_widths(self) -> tuple:
    return self.widths or (self.student.width,)


@dataclasses.dataclass(frozen=True)
class Plan:
  variants: tuple
  groups: tuple
  config_hash: str

  def cell_key(self, group: Group, m, n, replicate) -> tuple:
    """The key of one cell, as `results.cell_key` reads it back from a record."""
    label = json.dumps(self.variants[group.variant].label, sort_keys=True)
    return (group.kind, label, m, n, *replicate)

  def cells(self, group: Group) -> list[tuple]:
    """(m, n, replicate) of every cell of a group."""
    return [(m, n, r) for m in group.cell_widths for r in group.replicates for n in group.ns]


def merged_widths(widths) -> list[tuple]:
  """The widths of a study grouped by program: all widths <= MERGE_WIDTHS_UP_TO together, every
  larger width alone."""
  small = tuple(sorted(w for w in widths if w <= MERGE_WIDTHS_UP_TO))
  return ([small] if small else []) + [(w,) for w in sorted(widths) if w > MERGE_WIDTHS_UP_TO]


def _spec(cls, section, **overrides):
  names = {f.name for f in dataclasses.fields(cls)}
  return cls(**{k: v for k, v in section.items() if k in names}, **overrides)


def _positive_ints(values, what):
  values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
  if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
    raise ValueError(f'{what} must be positive integers, got {list(values)}')
  if len(set(values)) != len(values):
    # Also what a repeated --config.x=... tuple flag produces: config_flags appends.
    raise ValueError(f'{what} has duplicates: {list(values)}')
  return values


def train_spec(config) -> TrainSpec:
  return _spec(TrainSpec, config.train, noise_std=config.data.noise_std)


def science(config: ml_collections.ConfigDict) -> dict:
  """The config without the grid-sizing fields: what every cell's meaning depends on."""
  d = json.loads(config.to_json())
  for field in GRID_FIELDS:
    *parents, leaf = field.split('.')
    node = d
    for p in parents:
      node = node.get(p, {})
    node.pop(leaf, None)
  d.pop('name', None)
  return d


def config_hash(config) -> str:
  return hashlib.sha256(json.dumps(science(config), sort_keys=True).encode()).hexdigest()[:12]


def _variant_configs(config):
  knob, levels = config.ablation.knob, tuple(config.ablation.levels)
  if not knob:
    if levels:
      raise ValueError('ablation.levels is set but ablation.knob is empty')
    return [((), config)]
  if not levels:
    raise ValueError(f'ablation.knob={knob!r} needs ablation.levels')
  *parents, leaf = knob.split('.')
  out = []
  for v in levels:
    c = ml_collections.ConfigDict(config.to_dict())
    node = c
    try:
      for p in parents:
        node = node[p]
      if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
        raise KeyError(knob)
      node[leaf] = v
    except (KeyError, TypeError) as e:
      raise ValueError(f'ablation.knob={knob!r} is not a config field (or value {v!r} does not fit it)') from e
    out.append((((knob, v),), c))
  return out


def plan(config: ml_collections.ConfigDict, shard: tuple[int, int] = (0, 1)) -> Plan:
  """Validates `config` and lists the groups; only the groups of `shard` = (index, count).

  Units (kind, variant, width, replicate) are dealt round-robin to shards, so every shard gets a
  similar mix of widths. Raises ValueError with one line on any bad field. No compute.
  """
  index, count = shard
  if count < 1:
    raise ValueError(f'the number of shards must be >= 1, got {count}')
  if not 0 <= index < count:
    raise ValueError(f'shard index {index} is not in 0..{count - 1}')
  n_seeds = _positive_ints(config.seeds, 'seeds (the number of seeds)')[0]
  widths = _positive_ints(config.students.widths, 'students.widths')
  ns = _positive_ints(config.data.ns, 'data.ns')
  max_n = _positive_ints(config.data.max_n, 'data.max_n')[0]
  if max(ns) > max_n:
    raise ValueError(f'n={max(ns)} is beyond the training pool (data.max_n={max_n})')
  _positive_ints(config.data.n_test, 'data.n_test')
  members = int(config.decomposition.ensemble_members)
  if members < 0:
    raise ValueError(f'decomposition.ensemble_members must be >= 0, got {members}')
  if config.train.retry_lr_factor < 0 or config.train.retry_lr_factor >= 1 or config.train.max_retries < 0:
    raise ValueError('train.retry_lr_factor must be in [0, 1) and train.max_retries >= 0')
  if config.train.matmul_precision not in ('default', 'high', 'highest'):
    raise ValueError(f'train.matmul_precision must be default, high or highest, got {config.train.matmul_precision!r}')

  variants, units = [], []
  for v, (knob, c) in enumerate(_variant_configs(config)):
    t_spec, i_spec, tr_spec = _spec(teachers.TeacherSpec, c.teacher), _spec(inputs.InputSpec, c.inputs), train_spec(c)
    teachers.check(t_spec, i_spec)
    variants.append(Variant(knob, t_spec, i_spec, tr_spec, c))
    for ws in merged_widths(widths):
      s_spec = students.resolve(_spec(students.StudentSpec, c.students, width=max(ws)), t_spec)
      columns = ns + ((None,) if config.data.online else ())
      units += [('student', v, s_spec, ws, tr_spec, columns, (seed, 0)) for seed in range(n_seeds)]
    if members:
      if t_spec.family != 'mlp':
        raise ValueError('decomposition.ensemble_members needs an mlp teacher '
                         '(linear teachers have the closed form)')
      s_spec = students.resolve(students.StudentSpec(
          'mlp', width=t_spec.width, depth=t_spec.depth, activation=t_spec.activation, init='prior'), t_spec)
      units += [('ensemble', v, s_spec, (s_spec.width,), tr_spec, ns, (seed, 0)) for seed in range(n_seeds)]

  if config.nyquist.cutoff:
    v = len(variants)
    t_spec = teachers.TeacherSpec('bandlimited', cutoff=config.nyquist.cutoff, seed=config.teacher.seed,
                                  n_normalize=config.teacher.n_normalize)
    i_spec = inputs.InputSpec('cube', config.nyquist.dim)
    teachers.check(t_spec, i_spec)
    tr_spec = train_spec(config)
    variants.append(Variant(tuple(NYQUIST_LABEL.items()), t_spec, i_spec, tr_spec, config))
    for ws in merged_widths(_positive_ints(config.nyquist.widths, 'nyquist.widths')):
      s_spec = students.resolve(_spec(students.StudentSpec, config.students, width=max(ws)), t_spec)
      units += [('nyquist', v, s_spec, ws, tr_spec, ns, (seed, 0)) for seed in range(n_seeds)]

  mine = units[index::count]
  groups = {}
  for kind, v, s_spec, ws, tr_spec, group_ns, replicate in mine:
    key = (kind, v, s_spec, ws, group_ns)
    groups.setdefault(key, (tr_spec, []))[1].append(replicate)
  return Plan(variants=tuple(variants),
              groups=tuple(Group(kind, v, s_spec, tr_spec, group_ns, tuple(reps),
                                 members if kind == 'ensemble' else 1, ws)
                           for (kind, v, s_spec, ws, group_ns), (tr_spec, reps) in groups.items()),
              config_hash=config_hash(config))
