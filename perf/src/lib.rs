//! Placeholder until its issue work lands.
