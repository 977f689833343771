//! Which topics to record: explicit names, include/exclude regexes, and the
//! topics never recorded unless named.

use crate::node::error::{NodeError, Result};
use regex::Regex;

/// Topics left out of "record everything" unless listed or matched by
/// `include_regex` (rosbag2 leaves out the same).
const NOISY: [&str; 3] = ["/rosout", "/parameter_events", "/diagnostics"];

#[derive(Debug)]
pub struct TopicFilter {
    topics: Vec<String>,
    include: Option<Regex>,
    exclude: Option<Regex>,
    /// Fully qualified name of motedb's node: its own topics are skipped.
    own_prefix: String,
}

fn compile(name: &str, pattern: &str) -> Result<Option<Regex>> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(pattern)
        .map(Some)
        .map_err(|e| NodeError::ParamValue {
            name: name.into(),
            reason: format!("invalid regex: {e}"),
        })
}

impl TopicFilter {
    pub fn new(
        topics: &[String],
        include: &str,
        exclude: &str,
        own_node: &str,
    ) -> Result<TopicFilter> {
        Ok(TopicFilter {
            topics: topics.to_vec(),
            include: compile("include_regex", include)?,
            exclude: compile("exclude_regex", exclude)?,
            own_prefix: format!("{}/", own_node.trim_end_matches('/')),
        })
    }

    pub fn wants(&self, topic: &str) -> bool {
        if self.topics.iter().any(|t| t == topic) {
            return true;
        }
        if topic.starts_with(&self.own_prefix) {
            return false;
        }
        if self.exclude.as_ref().is_some_and(|r| r.is_match(topic)) {
            return false;
        }
        match &self.include {
            Some(r) => r.is_match(topic),
            None if self.topics.is_empty() => !NOISY.contains(&topic),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(topics: &[&str], inc: &str, exc: &str) -> TopicFilter {
        let topics: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        TopicFilter::new(&topics, inc, exc, "/motedb").unwrap()
    }

    #[test]
    fn everything_but_noise_and_own_topics_by_default() {
        let f = filter(&[], "", "");
        assert!(f.wants("/scan"));
        assert!(!f.wants("/rosout"));
        assert!(!f.wants("/diagnostics"));
        assert!(!f.wants("/motedb/anything"));
    }

    #[test]
    fn explicit_list_wins_and_limits() {
        let f = filter(&["/diagnostics"], "", "");
        assert!(f.wants("/diagnostics"));
        assert!(!f.wants("/scan"));
    }

    #[test]
    fn include_and_exclude() {
        let f = filter(&[], "^/camera/", "compressed$");
        assert!(f.wants("/camera/image"));
        assert!(!f.wants("/camera/image/compressed"));
        assert!(!f.wants("/scan"));
    }

    #[test]
    fn bad_regex_is_a_parameter_error() {
        assert!(TopicFilter::new(&[], "(", "", "/motedb").is_err());
    }
}
