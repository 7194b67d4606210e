//! The textual IR (filled in by the text-form work).
