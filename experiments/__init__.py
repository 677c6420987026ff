"""absl entry points and config presets for the teacher-student study."""
