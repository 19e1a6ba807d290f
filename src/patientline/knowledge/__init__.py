"""Knowledge base: categories, items and revisions, representative questions, search, timetables, quizzes."""
