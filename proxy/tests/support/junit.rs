//! Reading the JUnit reports `faultgate run --junit` writes, as a CI
//! system would.

use std::path::Path;

/// One `<testcase>`: its name, and the text of its `<failure>` if it has one.
#[derive(Debug)]
pub struct Case {
    pub name: String,
    pub failure: Option<String>,
    /// The `message` of its `<skipped>`, if it has one.
    pub skipped: Option<String>,
}

/// The test cases of the report at `path`; panics if it is not XML.
pub fn cases(path: &Path) -> Vec<Case> {
    let xml = std::fs::read_to_string(path).expect("the JUnit report");
    let doc = roxmltree::Document::parse(&xml)
        .unwrap_or_else(|e| panic!("the JUnit report is not XML ({e}):\n{xml}"));
    doc.descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|case| Case {
            name: case.attribute("name").unwrap_or_default().to_owned(),
            failure: case
                .children()
                .find(|n| n.has_tag_name("failure") || n.has_tag_name("error"))
                .map(|f| f.text().unwrap_or_default().to_owned()),
            skipped: case
                .children()
                .find(|n| n.has_tag_name("skipped"))
                .map(|s| s.attribute("message").unwrap_or_default().to_owned()),
        })
        .collect()
}
