//! Checks of the repository as a whole, not of one module: the template's IAM, alarms and
//! deploy-time rules, the docs' links and examples, and the module graph.

mod alarms;
mod architecture;
mod deploy;
mod docs;
