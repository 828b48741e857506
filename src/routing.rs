//! Which upstream targets a requested model name stands for.
//!
//! In order: a configured route (`"smart"` → ordered or weighted `provider.model`
//! targets); `provider.model`; a name with a suffix alias (`-thinking`,
//! `-thinking-visible`, `-low`, `-medium`, `-high`) resolved without it, with reasoning
//! overridden; a bare vendor name (`claude-sonnet-4-5`, `gemini-2.5-pro`, `gpt-5`,
//! `vendor/model`) sent by name rules to a provider, upstream under that same name unless
//! the provider maps it. Unknown names are a 404 naming the model.

use crate::config::{Config, ModelConfig, NameRule, Provider, ProviderType, Strategy};
use crate::error::{ErrorKind, GatewayError};
use crate::ir::Effort;
use crate::models;
use crate::protocols::Protocol;

/// One upstream a request may go to.
#[derive(Debug, Clone)]
pub struct Target<'c> {
    /// `provider.model`: the breaker key and what logs show.
    pub id: String,
    pub provider: &'c Provider,
    pub model: ModelConfig,
}

/// Reasoning asked for by a suffix alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasoningOverride {
    pub effort: Effort,
    /// Whether reasoning is shown to the caller (`-thinking-visible`, effort suffixes) or
    /// hidden (`-thinking`).
    pub visible: bool,
}

#[derive(Debug, Clone)]
pub struct Resolution<'c> {
    /// Targets in the order to try them.
    pub targets: Vec<Target<'c>>,
    pub reasoning: Option<ReasoningOverride>,
    /// The route name when the model was a route.
    pub route: Option<String>,
}

const SUFFIXES: [(&str, Effort, bool); 8] = [
    ("-thinking-visible", Effort::Medium, true),
    ("-thinking", Effort::Medium, false),
    ("-minimal", Effort::Minimal, true),
    ("-low", Effort::Low, true),
    ("-medium", Effort::Medium, true),
    ("-high", Effort::High, true),
    ("-xhigh", Effort::XHigh, true),
    ("-max", Effort::Max, true),
];

/// `*` matches any run of characters; everything else literally (ASCII case-insensitive).
pub fn glob(pattern: &str, name: &str) -> bool {
    let p = pattern.to_ascii_lowercase();
    let n = name.to_ascii_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == n;
    }
    let mut rest = n.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// The built-in name rules used when the config has no `modelRouting`: Claude, Gemini and
/// OpenAI model families to the first provider (by id) of the matching type, and
/// `vendor/model` names to a provider named `openrouter`.
pub fn default_rules(config: &Config) -> Vec<NameRule> {
    let first = |kinds: &[ProviderType]| {
        kinds.iter().find_map(|k| config.providers.values().find(|p| p.kind == *k).map(|p| p.id.clone()))
    };
    let mut rules = Vec::new();
    let mut add = |patterns: &[&str], provider: Option<String>| {
        if let Some(provider) = provider {
            rules.push(NameRule { patterns: patterns.iter().map(|s| s.to_string()).collect(), provider });
        }
    };
    add(&["claude-*"], first(&[ProviderType::Claude]));
    add(&["gemini-*", "gemma-*"], first(&[ProviderType::Gemini]));
    add(
        &["gpt-*", "o1*", "o3*", "o4*", "chatgpt-*", "codex-*"],
        first(&[ProviderType::OpenAiResponses, ProviderType::OpenAiChat]),
    );
    add(&["*/*"], config.providers.contains_key("openrouter").then(|| "openrouter".to_string()));
    rules
}

fn single<'c>(provider: &'c Provider, model: ModelConfig, name: &str) -> Target<'c> {
    Target { id: format!("{}.{}", provider.id, name), provider, model }
}

/// Routes and `provider.model` names. `pick` is a number in [0, 1) for weighted routes.
fn resolve_explicit<'c>(config: &'c Config, name: &str, pick: f64) -> Option<Resolution<'c>> {
    if let Some(route) = config.routes.get(name) {
        let mut targets: Vec<(Target<'c>, u32)> = route
            .targets
            .iter()
            .filter_map(|(id, weight)| {
                let (pid, model) = id.split_once('.')?;
                let provider = config.providers.get(pid)?;
                Some((single(provider, provider.model(model)?, model), *weight))
            })
            .collect();
        if route.strategy == Strategy::Weighted {
            let total: u64 = targets.iter().map(|(_, w)| *w as u64).sum();
            if total > 0 {
                let mut point = (pick.clamp(0.0, 0.999_999) * total as f64) as u64;
                let chosen = targets
                    .iter()
                    .position(|(_, w)| {
                        if point < *w as u64 {
                            true
                        } else {
                            point -= *w as u64;
                            false
                        }
                    })
                    .unwrap_or(0);
                let first = targets.remove(chosen);
                targets.insert(0, first);
            }
        }
        return Some(Resolution { targets: targets.into_iter().map(|(t, _)| t).collect(), reasoning: None, route: Some(name.to_string()) });
    }
    if let Some((pid, model)) = name.split_once('.') {
        if let Some(provider) = config.providers.get(pid) {
            let m = provider.model(model)?;
            return Some(Resolution { targets: vec![single(provider, m, model)], reasoning: None, route: None });
        }
    }
    None
}

/// Bare vendor names, by the configured or default name rules.
fn resolve_by_rules<'c>(config: &'c Config, name: &str) -> Option<Resolution<'c>> {
    let defaults;
    let rules = match &config.model_routing {
        Some(rules) => rules,
        None => {
            defaults = default_rules(config);
            &defaults
        }
    };
    let rule = rules.iter().find(|r| r.patterns.iter().any(|p| glob(p, name)))?;
    let provider = config.providers.get(&rule.provider)?;
    // The bare name goes upstream as is, unless the provider maps it.
    let model = provider.models.as_ref().and_then(|m| m.get(name).cloned()).unwrap_or_else(|| ModelConfig {
        upstream_model: name.to_string(),
        options: provider.options.clone(),
    });
    Some(Resolution { targets: vec![single(provider, model, name)], reasoning: None, route: None })
}

pub fn resolve<'c>(config: &'c Config, name: &str, protocol: Protocol, pick: f64) -> Result<Resolution<'c>, GatewayError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(GatewayError::invalid("Missing required parameter: 'model'.").with_param("model"));
    }
    if let Some(r) = resolve_explicit(config, name, pick) {
        return Ok(r);
    }
    // Suffixes before name rules: `claude-sonnet-4-5-high` is claude-sonnet-4-5 at high effort.
    for (suffix, effort, visible) in SUFFIXES {
        if let Some(base) = name.strip_suffix(suffix).filter(|b| !b.is_empty()) {
            if let Some(mut r) = resolve_explicit(config, base, pick).or_else(|| resolve_by_rules(config, base)) {
                r.reasoning = Some(ReasoningOverride { effort, visible });
                return Ok(r);
            }
        }
    }
    if let Some(r) = resolve_by_rules(config, name) {
        return Ok(r);
    }
    // The 404 of plain provider.model resolution says best what is missing.
    Err(match models::resolve(config, name, protocol) {
        Err(e) => e,
        Ok(_) => GatewayError::new(ErrorKind::NotFound, format!("The model \"{name}\" does not exist on this gateway.")).with_param("model"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        crate::config::parse(&format!(
            r#"{{"providers": {{
                "ant": {{"type": "claude", "baseURL": "https://a.test", "apiKey": "k", "models": {{"sonnet": {{"upstreamModel": "claude-sonnet-4-5"}}, "claude-opus-4-7": {{"upstreamModel": "claude-opus-4-7-20260101"}}}}}},
                "gem": {{"type": "gemini", "baseURL": "https://g.test", "apiKey": "k"}},
                "oai": {{"type": "openai-chat-completions", "baseURL": "https://o.test", "apiKey": "k", "models": ["gpt-4o"]}},
                "resp": {{"type": "openai-responses", "baseURL": "https://r.test", "apiKey": "k", "models": ["gpt-5"]}},
                "openrouter": {{"type": "openai-chat-completions", "baseURL": "https://or.test", "apiKey": "k"}}
            }}{extra}}}"#
        ))
        .unwrap()
    }

    fn ids(r: &Resolution) -> Vec<String> {
        r.targets.iter().map(|t| format!("{}→{}", t.id, t.model.upstream_model)).collect()
    }

    #[test]
    fn globs() {
        assert!(glob("claude-*", "Claude-Sonnet-4"));
        assert!(glob("*/*", "meta/llama"));
        assert!(!glob("*/*", "llama"));
        assert!(glob("o3*", "o3-mini"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("exact", "EXACT"));
        assert!(glob("*", ""));
    }

    #[test]
    fn provider_model_and_default_name_rules() {
        let c = config("");
        let r = resolve(&c, "ant.sonnet", Protocol::Claude, 0.0).unwrap();
        assert_eq!(ids(&r), vec!["ant.sonnet→claude-sonnet-4-5"]);
        // Bare vendor names, as Claude Code, Gemini CLI and Codex send them.
        assert_eq!(ids(&resolve(&c, "claude-haiku-4-5", Protocol::Claude, 0.0).unwrap()), vec!["ant.claude-haiku-4-5→claude-haiku-4-5"]);
        assert_eq!(ids(&resolve(&c, "claude-opus-4-7", Protocol::Claude, 0.0).unwrap()), vec!["ant.claude-opus-4-7→claude-opus-4-7-20260101"]);
        assert_eq!(ids(&resolve(&c, "gemini-2.5-pro", Protocol::Gemini, 0.0).unwrap()), vec!["gem.gemini-2.5-pro→gemini-2.5-pro"]);
        assert_eq!(ids(&resolve(&c, "gpt-5.1-codex", Protocol::OpenAiResponses, 0.0).unwrap()), vec!["resp.gpt-5.1-codex→gpt-5.1-codex"]);
        assert_eq!(ids(&resolve(&c, "meta-llama/llama-4", Protocol::OpenAiChat, 0.0).unwrap()), vec!["openrouter.meta-llama/llama-4→meta-llama/llama-4"]);
        let e = resolve(&c, "mistral-large", Protocol::OpenAiChat, 0.0).unwrap_err();
        assert_eq!(e.status(), 404);
        assert!(e.message.contains("mistral-large"));
    }

    #[test]
    fn explicit_rules_replace_the_defaults() {
        let c = config(r#", "modelRouting": [{"match": ["gpt-*", "claude-*"], "provider": "oai"}]"#);
        assert_eq!(ids(&resolve(&c, "claude-x", Protocol::Claude, 0.0).unwrap()), vec!["oai.claude-x→claude-x"]);
        assert!(resolve(&c, "gemini-2.5-pro", Protocol::Gemini, 0.0).is_err());
    }

    #[test]
    fn routes_order_and_weights() {
        let c = config(
            r#", "routes": {"smart": {"targets": ["ant.sonnet", "oai.gpt-4o", "gem.gemini-2.5-flash"]},
                           "lb": {"strategy": "weighted", "targets": [{"model": "oai.gpt-4o", "weight": 3}, {"model": "resp.gpt-5", "weight": 1}]}}"#,
        );
        let r = resolve(&c, "smart", Protocol::OpenAiChat, 0.9).unwrap();
        assert_eq!(r.route.as_deref(), Some("smart"));
        assert_eq!(ids(&r), vec!["ant.sonnet→claude-sonnet-4-5", "oai.gpt-4o→gpt-4o", "gem.gemini-2.5-flash→gemini-2.5-flash"]);
        assert_eq!(resolve(&c, "lb", Protocol::OpenAiChat, 0.1).unwrap().targets[0].id, "oai.gpt-4o");
        assert_eq!(resolve(&c, "lb", Protocol::OpenAiChat, 0.74).unwrap().targets[0].id, "oai.gpt-4o");
        let r = resolve(&c, "lb", Protocol::OpenAiChat, 0.76).unwrap();
        assert_eq!(r.targets.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), vec!["resp.gpt-5", "oai.gpt-4o"]);
        // Weights spread picks in proportion.
        let firsts = (0..1000).filter(|i| resolve(&c, "lb", Protocol::OpenAiChat, *i as f64 / 1000.0).unwrap().targets[0].id == "oai.gpt-4o").count();
        assert_eq!(firsts, 750);
    }

    #[test]
    fn suffix_aliases_override_reasoning() {
        let c = config(r#", "routes": {"smart": {"targets": ["ant.sonnet"]}}"#);
        let r = resolve(&c, "ant.sonnet-thinking", Protocol::OpenAiChat, 0.0).unwrap();
        assert_eq!(ids(&r), vec!["ant.sonnet→claude-sonnet-4-5"]);
        assert_eq!(r.reasoning, Some(ReasoningOverride { effort: Effort::Medium, visible: false }));
        let r = resolve(&c, "smart-thinking-visible", Protocol::OpenAiChat, 0.0).unwrap();
        assert_eq!(r.reasoning, Some(ReasoningOverride { effort: Effort::Medium, visible: true }));
        let r = resolve(&c, "claude-sonnet-4-5-high", Protocol::Claude, 0.0).unwrap();
        assert_eq!(ids(&r), vec!["ant.claude-sonnet-4-5→claude-sonnet-4-5"]);
        assert_eq!(r.reasoning.unwrap().effort, Effort::High);
        // A configured name that happens to end like a suffix wins.
        let c2 = crate::config::parse(r#"{"providers": {"p": {"type": "echo", "models": ["m-high"]}}}"#).unwrap();
        assert_eq!(resolve(&c2, "p.m-high", Protocol::OpenAiChat, 0.0).unwrap().reasoning, None);
    }
}
