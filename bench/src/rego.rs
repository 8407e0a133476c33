//! The routing rules in Rego (`bench/rego/route.rego`), evaluated by the `regorus` interpreter.
//!
//! This is how a team that writes its rules in Rego would run them from Rust: one engine with the policy loaded,
//! a new input per decision. It exists to compare speed and answers with the policy; it decides nothing for users.

/// The Rego source of the routing rules.
pub const ROUTE_REGO: &str = include_str!("../rego/route.rego");

/// The rule that holds the decision.
pub const DECISION_RULE: &str = "data.foundry.route.decision";

/// A Rego engine with the routing rules loaded.
#[derive(Debug, Clone)]
pub struct RegoRouter {
    engine: regorus::Engine,
}

impl RegoRouter {
    /// Loads and parses the rules.
    pub fn new() -> Result<Self, String> {
        let mut engine = regorus::Engine::new();
        engine.add_policy("route.rego".into(), ROUTE_REGO.into()).map_err(|e| format!("route.rego: {e}"))?;
        Ok(Self { engine })
    }

    /// Decides one call: parses the JSON call, evaluates the decision rule and returns it as JSON text.
    pub fn decide(&mut self, call_json: &str) -> Result<String, String> {
        self.engine.set_input_json(call_json).map_err(|e| format!("input: {e}"))?;
        let decision = self.engine.eval_rule(DECISION_RULE.into()).map_err(|e| format!("evaluation: {e}"))?;
        if decision == regorus::Value::Undefined {
            return Err("the decision is undefined".into());
        }
        decision.to_json_str().map_err(|e| format!("output: {e}"))
    }
}
