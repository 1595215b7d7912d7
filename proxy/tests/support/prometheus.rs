//! A strict reader of the Prometheus text exposition format (version
//! 0.0.4), as Prometheus's own parser reads a page: a line it cannot read
//! makes the whole page fail.

/// One sample line: its metric name, its labels (values unescaped) and its
/// value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a page: every sample, or the first line that is not in the format
/// (with its number). A sample of a metric no `# TYPE` line declared before
/// it is an error too: faultgate declares every metric it writes.
pub fn parse(page: &str) -> Result<Vec<Sample>, String> {
    let mut declared: Vec<String> = Vec::new();
    let mut samples = Vec::new();
    for (number, line) in page.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: {line:?}", number + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.trim_start().splitn(3, ' ');
            match (words.next(), words.next(), words.next()) {
                (Some("TYPE"), Some(name), Some(kind)) => {
                    if !is_metric_name(name) {
                        return Err(at("a bad metric name"));
                    }
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at("an unknown type"));
                    }
                    declared.push(name.to_owned());
                }
                (Some("HELP"), Some(name), _) if !is_metric_name(name) => {
                    return Err(at("a bad metric name"));
                }
                _ => {}
            }
            continue;
        }
        let sample = sample(line).map_err(|why| at(&why))?;
        if !declared.contains(&sample.name) {
            return Err(at("a sample of a metric no TYPE line declared"));
        }
        samples.push(sample);
    }
    Ok(samples)
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(['{', ' ']).ok_or("no value")?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return Err("a bad metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        rest = inside;
        loop {
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=').ok_or("a label without '='")?;
            let label = &rest[..eq];
            if !is_label_name(label) {
                return Err(format!("a bad label name {label:?}"));
            }
            let value_text = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("a label value without its opening quote")?;
            let mut value = String::new();
            let mut chars = value_text.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("a label value without its closing quote".into()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        _ => return Err("a bad escape in a label value".into()),
                    },
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((label.to_owned(), value));
            rest = &value_text[end + 1..];
            if let Some(after) = rest.strip_prefix(',') {
                rest = after;
            } else if !rest.starts_with('}') {
                return Err("labels not separated by ','".into());
            }
        }
    }
    let mut fields = rest
        .strip_prefix(' ')
        .ok_or("no space before the value")?
        .split(' ');
    let value = fields.next().ok_or("no value")?;
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number
            .parse()
            .map_err(|_| format!("a bad value {number:?}"))?,
    };
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| format!("a bad timestamp {timestamp:?}"))?;
    }
    if fields.next().is_some() {
        return Err("more after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}
