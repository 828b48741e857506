//! Model names: listing what the config serves and resolving `provider.model`.
//!
//! A model is named `provider.modelName`, split at the first `.` (model names may
//! contain dots, provider ids may not). Resolution yields the provider and the model's
//! configuration (upstream name, options) or a 404 that names the model and says where
//! to list the valid ones.

use crate::config::{Config, ModelConfig, Provider};
use crate::error::{ErrorKind, GatewayError};
use crate::protocols::Protocol;

/// One listed model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    /// `provider.model`, what clients send.
    pub id: String,
    pub provider: String,
    pub upstream_model: String,
}

/// Every configured model, sorted by id, then the routes (named by themselves, their
/// "provider" shown as `route`). Providers that accept any model name (no `models` in
/// their config) have nothing to list.
pub fn list(config: &Config) -> Vec<ModelEntry> {
    let mut out = Vec::new();
    for (name, route) in &config.routes {
        out.push(ModelEntry {
            id: name.clone(),
            provider: "route".to_string(),
            upstream_model: route.targets.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>().join(", "),
        });
    }
    for (pid, provider) in &config.providers {
        if let Some(models) = &provider.models {
            for (name, model) in models {
                out.push(ModelEntry {
                    id: format!("{pid}.{name}"),
                    provider: pid.clone(),
                    upstream_model: model.upstream_model.clone(),
                });
            }
        }
    }
    out
}

/// The model list path a caller of `protocol` would use.
pub fn list_path(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::OpenAiChat | Protocol::OpenAiResponses => "GET /v1/models",
        Protocol::Claude => "GET /v1/models",
        Protocol::Gemini => "GET /v1beta/models",
    }
}

pub struct Resolved<'c> {
    pub provider: &'c Provider,
    pub model: ModelConfig,
}

pub fn resolve<'c>(config: &'c Config, name: &str, protocol: Protocol) -> Result<Resolved<'c>, GatewayError> {
    let name = name.trim();
    let not_found = |why: String| {
        GatewayError::new(
            ErrorKind::NotFound,
            format!("The model \"{name}\" does not exist on this gateway: {why}. List the available models with {}.", list_path(protocol)),
        )
        .with_param("model")
    };
    if name.is_empty() {
        return Err(GatewayError::invalid("Missing required parameter: 'model'.").with_param("model"));
    }
    let Some((pid, model)) = name.split_once('.') else {
        return Err(not_found("models are named provider.model".into()));
    };
    let Some(provider) = config.providers.get(pid) else {
        return Err(not_found(format!("no provider \"{pid}\" is configured")));
    };
    match provider.model(model) {
        Some(model) if !model.upstream_model.is_empty() => Ok(Resolved { provider, model }),
        _ => Err(not_found(format!("provider \"{pid}\" has no model \"{model}\""))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        crate::config::parse(
            r#"{"providers": {
                "oa": {"type": "openai-chat-completions", "baseURL": "https://x.test", "apiKey": "k",
                       "models": {"gpt-4.1": {"upstreamModel": "gpt-4.1-2025"}, "a": {}}},
                "any": {"type": "echo"}
            }}"#,
        )
        .unwrap()
    }

    #[test]
    fn resolves_at_the_first_dot() {
        let c = config();
        let r = resolve(&c, "oa.gpt-4.1", Protocol::OpenAiChat).unwrap();
        assert_eq!(r.provider.id, "oa");
        assert_eq!(r.model.upstream_model, "gpt-4.1-2025");
        assert_eq!(resolve(&c, "any.whatever.v2", Protocol::Claude).unwrap().model.upstream_model, "whatever.v2");
    }

    #[test]
    fn unknown_names_are_404_naming_the_model() {
        let c = config();
        for (name, why) in [("gpt-4", "provider.model"), ("zz.m", "no provider \"zz\""), ("oa.nope", "has no model \"nope\""), ("oa.", "has no model")] {
            let e = resolve(&c, name, Protocol::Gemini).err().unwrap();
            assert_eq!(e.status(), 404);
            assert!(e.message.contains(name) && e.message.contains(why), "{}", e.message);
            assert!(e.message.contains("/v1beta/models"));
        }
        assert_eq!(resolve(&c, " ", Protocol::Claude).err().unwrap().status(), 400);
    }

    #[test]
    fn lists_sorted_ids() {
        let ids: Vec<String> = list(&config()).into_iter().map(|m| m.id).collect();
        assert_eq!(ids, vec!["oa.a", "oa.gpt-4.1"]);
        let with_route = crate::config::parse(r#"{"providers": {"p": {"type": "echo", "models": ["m"]}}, "routes": {"best": {"targets": ["p.m"]}}}"#).unwrap();
        let listed = list(&with_route);
        assert_eq!(listed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), vec!["best", "p.m"]);
        assert_eq!(listed[0].provider, "route");
    }
}
