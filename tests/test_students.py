"""teacher_student.students: specs, the width-independent initialization, and what a family tells the engine."""

import jax
import numpy as np
import pytest
import scipy.stats

from helpers import GAUSS4
from teacher_student import mlp, students, teachers


@pytest.mark.parametrize('make,match', [
    (lambda: students.StudentSpec(width=0), 'width must be a positive integer'),
    (lambda: students.StudentSpec(width=-3), 'width must be a positive integer'),
    (lambda: students.StudentSpec(family='cnn'), 'unknown student family'),
    (lambda: students.StudentSpec(activation='sigmoid'), 'unknown activation'),
    (lambda: students.StudentSpec(init='zero'), 'cannot start from zero'),
])
def test_bad_student_specs_raise_one_line(make, match):
  with pytest.raises(ValueError, match=match) as err:
    make()
  assert '\n' not in str(err.value)


def test_padded_initialization_is_the_narrow_students_own(x64):
  t = teachers.make_teacher(teachers.TeacherSpec('mlp', depth=3, width=4), GAUSS4, x64)
  key = jax.random.key(7)
  for w in (1, 5, 16):
    narrow = students.make_student(students.StudentSpec(width=w, bias_scale=0.2), t).init(key, x64)
    padded = students.make_student(students.StudentSpec(width=16, bias_scale=0.2), t).init(key, x64, width=w)
    for a, b in zip(jax.tree.leaves(mlp.embed(narrow, 16)), jax.tree.leaves(padded)):
      np.testing.assert_array_equal(a, b)
  # The draws are standard normal: 2^18 hidden weights, rescaled by sqrt(fan_in).
  z = np.asarray(students.make_student(students.StudentSpec(width=512), t).init(key, x64)['params']['Dense_1']['kernel'])
  z = z * np.sqrt(512)
  assert scipy.stats.kstest(z.ravel(), 'norm').pvalue > 1e-3 and abs(z.std() - 1) < 0.01


def test_the_certificate_holds_exactly_for_students_containing_the_teacher():
  """R(m) = 0 is certified for MLP students of the teacher's depth and activation and at least
  its width, and for no other (hand-listed cases)."""
  t = teachers.TeacherSpec('mlp', depth=2, width=4, activation='tanh')
  resolve = lambda **kw: students.resolve(students.StudentSpec(**kw), t)
  assert students.certified_realizable(resolve(width=4), t) and students.certified_realizable(resolve(width=9), t)
  assert not students.certified_realizable(resolve(width=3), t)
  assert not students.certified_realizable(resolve(width=8, depth=1), t)
  assert not students.certified_realizable(resolve(width=8, activation='relu'), t)
  rf = teachers.TeacherSpec('random_features', width=32)
  assert not students.certified_realizable(students.resolve(students.StudentSpec(width=64), rf), rf)


def test_families_report_their_hidden_units_and_parameters(x64):
  t = teachers.make_teacher(teachers.TeacherSpec('random_features', width=32, out_dim=2), GAUSS4, x64)
  features = students.make_student(students.StudentSpec('features'), t)
  assert (features.hidden_units, features.num_params) == (32, 64)
  assert not features.has_feature_major_form and not features.can_pad_width
  wide = students.make_student(students.StudentSpec(width=7, depth=2), t)
  assert (wide.hidden_units, wide.num_params) == (14, 4 * 7 + 7 + 7 * 7 + 7 + 7 * 2 + 2)
  assert wide.has_feature_major_form and wide.can_pad_width
