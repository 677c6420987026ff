"""Teachers, inputs, students and the vmapped training engine of the teacher-student study."""
