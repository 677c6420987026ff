"""teacher_student.train_spec: bad training settings are one-line errors before any compute."""

import jax
import pytest

from helpers import teacher_and_test_set
from teacher_student import engine, students, train_spec
from teacher_student.train_spec import TrainSpec


@pytest.mark.parametrize('make,match', [
    (lambda: train_spec.check_ns([10, 0]), 'positive integers'),
    (lambda: train_spec.check_ns([-5]), 'positive integers'),
    (lambda: TrainSpec(dtype='float16'), 'invalid dtype'),
    (lambda: TrainSpec(optimizer='lbfgs'), 'unknown optimizer'),
    (lambda: TrainSpec(learning_rate=0.0), 'learning rate'),
    (lambda: TrainSpec(steps=0), 'train.steps must be >= 1'),
    (lambda: TrainSpec(noise_std=-1.0), 'label noise std'),
])
def test_bad_train_settings_raise_one_line(make, match):
  with pytest.raises(ValueError, match=match) as err:
    make()
  assert '\n' not in str(err.value)


def test_float64_without_x64_is_refused_before_compute():
  t, x, y = teacher_and_test_set('float32')
  st = students.make_student(students.StudentSpec(width=2), t)
  with jax.enable_x64(False), pytest.raises(ValueError, match='jax_enable_x64'):
    engine.train_grid(st, TrainSpec(dtype='float64'), seeds=[0], ns=[8], x_test=x, y_test=y)
