//! The security review's regressions (issue 15), kept together as one cross-cutting set
//! rather than scattered over the families: the request pipeline against an adversary
//! (`edge`) and the token findings (`tokens`).

mod edge;
mod tokens;
