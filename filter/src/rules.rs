//! Authorization rules on the userinfo claims, checked at login and on every
//! fresh userinfo answer (a rule no longer met is handled like a fatal answer).
//!
//! A claim a rule needs that is missing or of the wrong type fails that rule.
//! The groups claim may be an array of strings (non-strings are ignored) or a
//! single string naming one group; a string is NOT split on spaces or commas,
//! so `"admins users"` is one group of that name.

use std::fmt;

use serde_json::Value;

use crate::config::AuthorizationRules;
use crate::glob::glob_match;

/// The first rule the claims do not satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleViolation {
    SubjectNotAllowed,
    EmailNotAllowed,
    EmailDomainNotAllowed,
    /// Carries the required group that is missing (a configured name, not user data).
    MissingGroup(String),
    EmailNotVerified,
}

impl RuleViolation {
    /// Short, static text for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RuleViolation::SubjectNotAllowed => "subject not allowed",
            RuleViolation::EmailNotAllowed => "email not allowed",
            RuleViolation::EmailDomainNotAllowed => "email domain not allowed",
            RuleViolation::MissingGroup(_) => "missing group",
            RuleViolation::EmailNotVerified => "email not verified",
        }
    }
}

impl fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for RuleViolation {}

/// Checks every configured condition against `claims` (a JSON object);
/// `Ok(())` when all hold (always, with no conditions configured).
pub fn check_rules(rules: &AuthorizationRules, claims: &Value) -> Result<(), RuleViolation> {
    if !rules.allowed_subjects.is_empty() {
        let sub = claims.get("sub").and_then(Value::as_str);
        if !sub.is_some_and(|sub| rules.allowed_subjects.iter().any(|g| glob_match(g, sub))) {
            return Err(RuleViolation::SubjectNotAllowed);
        }
    }
    // Config lower-cases email globs and domains.
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    if !rules.allowed_emails.is_empty() {
        let ok = email
            .as_deref()
            .is_some_and(|e| rules.allowed_emails.iter().any(|g| glob_match(g, e)));
        if !ok {
            return Err(RuleViolation::EmailNotAllowed);
        }
    }
    if !rules.allowed_email_domains.is_empty() {
        let domain = email
            .as_deref()
            .and_then(|e| e.rsplit_once('@'))
            .map(|(_, d)| d);
        if !domain.is_some_and(|d| rules.allowed_email_domains.iter().any(|a| a == d)) {
            return Err(RuleViolation::EmailDomainNotAllowed);
        }
    }
    if !rules.required_groups.is_empty() {
        let groups: Vec<&str> = match claims.get(&rules.groups_claim) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(one)) => vec![one.as_str()],
            _ => Vec::new(),
        };
        if let Some(missing) = rules
            .required_groups
            .iter()
            .find(|g| !groups.contains(&g.as_str()))
        {
            return Err(RuleViolation::MissingGroup(missing.clone()));
        }
    }
    if rules.require_email_verified {
        // Some IdPs (e.g. Cognito) send the boolean as the string "true".
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        if !verified {
            return Err(RuleViolation::EmailNotVerified);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn rules() -> AuthorizationRules {
        AuthorizationRules {
            groups_claim: "groups".to_string(),
            ..AuthorizationRules::default()
        }
    }

    #[test]
    fn no_conditions_always_pass() {
        assert_eq!(check_rules(&rules(), &json!({})), Ok(()));
        assert_eq!(check_rules(&rules(), &json!(null)), Ok(()));
    }

    #[test]
    fn subjects_by_glob() {
        let r = AuthorizationRules {
            allowed_subjects: vec!["user-*".to_string(), "svc-?".to_string()],
            ..rules()
        };
        assert_eq!(check_rules(&r, &json!({"sub": "user-1"})), Ok(()));
        assert_eq!(check_rules(&r, &json!({"sub": "svc-a"})), Ok(()));
        for claims in [
            json!({"sub": "admin"}),
            json!({"sub": "svc-ab"}),
            json!({}),
            json!({"sub": 1}),
        ] {
            assert_eq!(
                check_rules(&r, &claims),
                Err(RuleViolation::SubjectNotAllowed),
                "{claims}"
            );
        }
    }

    #[test]
    fn emails_are_compared_lower_cased() {
        let r = AuthorizationRules {
            allowed_emails: vec!["*@example.com".to_string()],
            ..rules()
        };
        assert_eq!(
            check_rules(&r, &json!({"email": "Alice@EXAMPLE.com"})),
            Ok(())
        );
        assert_eq!(
            check_rules(&r, &json!({"email": "alice@example.org"})),
            Err(RuleViolation::EmailNotAllowed)
        );
        assert_eq!(
            check_rules(&r, &json!({})),
            Err(RuleViolation::EmailNotAllowed)
        );
    }

    #[test]
    fn email_domains_are_exact() {
        let r = AuthorizationRules {
            allowed_email_domains: vec!["example.com".to_string()],
            ..rules()
        };
        assert_eq!(
            check_rules(&r, &json!({"email": "bob@Example.COM"})),
            Ok(())
        );
        for email in [
            "bob@sub.example.com",
            "bob@example.com.evil",
            "bob",
            "example.com",
            "a@example.com@evil.org",
        ] {
            assert_eq!(
                check_rules(&r, &json!({"email": email})),
                Err(RuleViolation::EmailDomainNotAllowed),
                "{email}"
            );
        }
        assert_eq!(
            check_rules(&r, &json!({})),
            Err(RuleViolation::EmailDomainNotAllowed)
        );
    }

    #[test]
    fn groups_from_array_or_single_string() {
        let r = AuthorizationRules {
            groups_claim: "roles".to_string(),
            required_groups: vec!["admins".to_string(), "ops".to_string()],
            ..rules()
        };
        assert_eq!(
            check_rules(&r, &json!({"roles": ["ops", 3, "admins"]})),
            Ok(())
        );
        assert_eq!(
            check_rules(&r, &json!({"roles": ["admins"]})),
            Err(RuleViolation::MissingGroup("ops".to_string()))
        );
        assert_eq!(
            check_rules(&r, &json!({"groups": ["admins", "ops"]})),
            Err(RuleViolation::MissingGroup("admins".to_string())),
            "only the configured claim counts"
        );
        let one = AuthorizationRules {
            required_groups: vec!["admins".to_string()],
            ..rules()
        };
        assert_eq!(check_rules(&one, &json!({"groups": "admins"})), Ok(()));
        assert_eq!(
            check_rules(&one, &json!({"groups": "admins ops"})),
            Err(RuleViolation::MissingGroup("admins".to_string())),
            "a string is one group, never split"
        );
        assert_eq!(
            check_rules(&one, &json!({"groups": "Admins"})),
            Err(RuleViolation::MissingGroup("admins".to_string()))
        );
        assert!(check_rules(&one, &json!({"groups": {"admins": true}})).is_err());
    }

    #[test]
    fn email_verified_must_be_true() {
        let r = AuthorizationRules {
            require_email_verified: true,
            ..rules()
        };
        assert_eq!(check_rules(&r, &json!({"email_verified": true})), Ok(()));
        assert_eq!(check_rules(&r, &json!({"email_verified": "true"})), Ok(()));
        for claims in [
            json!({"email_verified": false}),
            json!({"email_verified": "yes"}),
            json!({"email_verified": 1}),
            json!({}),
        ] {
            assert_eq!(
                check_rules(&r, &claims),
                Err(RuleViolation::EmailNotVerified),
                "{claims}"
            );
        }
    }

    #[test]
    fn reasons_are_static_text() {
        assert_eq!(
            RuleViolation::MissingGroup("x".to_string()).reason(),
            "missing group"
        );
        assert_eq!(
            RuleViolation::EmailNotVerified.to_string(),
            "email not verified"
        );
    }
}
