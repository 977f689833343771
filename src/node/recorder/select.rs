//! Which topics to record: explicit names, include/exclude regexes, and the
//! topics never recorded unless named.

use crate::node::error::{NodeError, Result};
use regex::Regex;

/// Topics left out of "record everything" unless listed or matched by
/// `include_regex`: log and parameter chatter, and motedb's own health
/// output (motedb's choice; `ros2 bag record -a` keeps them).
const NOISY: [&str; 3] = ["/rosout", "/parameter_events", "/diagnostics"];

#[derive(Debug)]
pub struct TopicFilter {
    /// Fully qualified names (relative ones expanded at construction).
    topics: Vec<String>,
    include_hidden: bool,
    include: Option<Regex>,
    exclude: Option<Regex>,
    /// Fully qualified name of motedb's node: its own topics are skipped.
    own_prefix: String,
    /// Recorded whatever the other rules say (`places.mark_topic`).
    always: Option<String>,
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
    /// `own_node` is motedb's fully qualified node name: relative names in
    /// `topics` are expanded in its namespace (`scan` -> `/ns/scan`) and
    /// `~/x` under it, as rcl expands names.
    pub fn new(
        topics: &[String],
        include: &str,
        exclude: &str,
        own_node: &str,
        include_hidden: bool,
    ) -> Result<TopicFilter> {
        Ok(TopicFilter {
            topics: topics
                .iter()
                .filter(|t| !t.is_empty())
                .map(|t| expand(t, own_node))
                .collect(),
            include_hidden,
            include: compile("include_regex", include)?,
            exclude: compile("exclude_regex", exclude)?,
            own_prefix: format!("{}/", own_node.trim_end_matches('/')),
            always: None,
        })
    }

    /// Also records `topic` (expanded like `topics`), whatever the rest of
    /// the selection says; an empty name changes nothing.
    pub fn always(mut self, topic: &str, own_node: &str) -> TopicFilter {
        self.always = (!topic.is_empty()).then(|| expand(topic, own_node));
        self
    }

    /// The always-recorded topic, fully qualified.
    pub fn always_recorded(&self) -> Option<&str> {
        self.always.as_deref()
    }

    pub fn wants(&self, topic: &str) -> bool {
        if self.always.as_deref() == Some(topic) || self.topics.iter().any(|t| t == topic) {
            return true;
        }
        if topic.starts_with(&self.own_prefix) {
            return false;
        }
        if !self.include_hidden && is_hidden(topic) {
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

/// A topic name part starting with `_` hides it (ROS 2 naming rules; what
/// rosbag2 leaves out unless --include-hidden-topics).
fn is_hidden(topic: &str) -> bool {
    topic.split('/').any(|part| part.starts_with('_'))
}

/// The fully qualified form of `name` for a node named `own_node` (fully
/// qualified).
fn expand(name: &str, own_node: &str) -> String {
    if name.starts_with('/') {
        return name.to_string();
    }
    if let Some(rest) = name.strip_prefix("~/") {
        return format!("{}/{rest}", own_node.trim_end_matches('/'));
    }
    let namespace = own_node.rsplit_once('/').map_or("", |(ns, _)| ns);
    format!("{namespace}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(topics: &[&str], inc: &str, exc: &str) -> TopicFilter {
        let topics: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        TopicFilter::new(&topics, inc, exc, "/motedb", false).unwrap()
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
    fn the_mark_topic_is_recorded_whatever_the_selection_and_changes_nothing_else() {
        let f = filter(&["/other"], "", "^/inc").always("/incidents", "/motedb");
        assert!(f.wants("/incidents"), "exclude_regex does not apply to it");
        assert!(f.wants("/other") && !f.wants("/scan"));
        let relative = filter(&[], "", "").always("incidents", "/robot/motedb");
        assert_eq!(relative.always_recorded(), Some("/robot/incidents"));
        // Recording everything stays everything.
        let all = filter(&[], "", "").always("/incidents", "/motedb");
        assert!(all.wants("/scan") && all.wants("/incidents") && !all.wants("/rosout"));
        assert_eq!(
            filter(&[], "", "").always("", "/motedb").always_recorded(),
            None
        );
    }

    #[test]
    fn bad_regex_is_a_parameter_error() {
        assert!(TopicFilter::new(&[], "(", "", "/motedb", false).is_err());
    }

    #[test]
    fn hidden_topics_are_left_out_unless_asked_or_named() {
        let f = filter(&[], "", "");
        assert!(!f.wants("/_hidden"));
        assert!(!f.wants("/robot/_internal/state"));
        assert!(f.wants("/robot/visible_"));
        let named = filter(&["/_hidden"], "", "");
        assert!(named.wants("/_hidden"));
        let all = TopicFilter::new(&[], "", "", "/motedb", true).unwrap();
        assert!(all.wants("/_hidden"));
    }

    #[test]
    fn relative_topic_names_are_expanded_in_the_node_namespace() {
        let names = ["scan".to_string(), "~/x".to_string(), "/abs".to_string()];
        let f = TopicFilter::new(&names, "", "", "/robot7/db", false).unwrap();
        assert!(f.wants("/robot7/scan"));
        assert!(f.wants("/robot7/db/x"));
        assert!(f.wants("/abs"));
        assert!(!f.wants("/scan"));
        let f = TopicFilter::new(&names[..1], "", "", "/motedb", false).unwrap();
        assert!(f.wants("/scan"));
    }
}
