"""Small shared types with no dependencies beyond the standard library."""
