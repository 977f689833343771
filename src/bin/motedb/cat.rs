//! Decoding messages: cat (stores and bags) and msgdef.

use super::*;

pub(crate) fn time_range(range: &Range, first: Nanos, last: Nanos) -> Result<(Nanos, Nanos), Fail> {
    let parse = |s: &Option<String>, default: Nanos| match s {
        Some(s) => parse_time(s, first, last).map_err(|e| fail(2, e)),
        None => Ok(default),
    };
    Ok((parse(&range.start, 0)?, parse(&range.end, Nanos::MAX)?))
}

/// Schema of a topic: its stored definition, else installed .msg files.
/// (An empty definition is valid for a field-less type such as Empty.)
pub(crate) fn topic_schema(type_name: &str, definition: &str) -> Result<Schema, Fail> {
    let mut text = definition.to_string();
    if text.trim().is_empty() {
        if let Ok(found) = cdr::definition::resolve(type_name, &ament_prefixes()) {
            text = found;
        }
    }
    Schema::parse(type_name, &text).map_err(|e| {
        fail(
            1,
            format!("definition of {type_name}: {e}; source the ROS workspace defining it so AMENT_PREFIX_PATH finds it"),
        )
    })
}

pub(crate) fn ament_prefixes() -> Vec<PathBuf> {
    std::env::var("AMENT_PREFIX_PATH")
        .map(|v| cdr::definition::prefixes_from_env_value(&v))
        .unwrap_or_default()
}

pub(crate) fn cat(args: &CatArgs, json: bool) -> CliResult {
    let format = if json { Format::Json } else { args.format };
    if export::is_bag(&args.source) {
        return cat_bag(args, format);
    }
    let store = open_read(&args.source)?;
    let mut schemas = std::collections::HashMap::new();
    let mut ids = Vec::new();
    for name in &args.topics {
        let topic = store.topic_by_name(name).ok_or_else(|| {
            fail(
                4,
                format!("no topic {name} in the store (see `motedb topics`)"),
            )
        })?;
        let schema = topic_schema(&topic.spec.type_name, &topic.spec.definition)?;
        schemas.insert(topic.id, (name.clone(), schema));
        ids.push(topic.id);
    }
    // Relative times refer to the whole recording, as for export.
    let (first, last) = bounds(&store.topics());
    let (start, end) = time_range(&args.range, first, last)?;
    let mut printer = Printer::new(format, args.limit, args.truncate, args.topics.len() > 1);
    for rec in store.iter(&ids, start, end, false)? {
        if printer.done() {
            break;
        }
        let rec = rec?;
        if let Some((name, schema)) = schemas.get(&rec.topic) {
            printer.print(name, schema, &rec)?;
        }
    }
    Ok(printer.exit_code())
}

/// `cat` on a bag (directory or .mcap file): messages of the channels
/// named in file order. Relative times use the bag's summary when it has one.
fn cat_bag(args: &CatArgs, format: Format) -> CliResult {
    let (files, first, last) = match export::bag_info(&args.source) {
        Ok(info) => (info.files, info.start, info.end),
        Err(_) if args.source.is_file() => (vec![args.source.clone()], 0, 0),
        Err(e) => return Err(e.into()),
    };
    let (start, end) = time_range(&args.range, first, last)?;
    let mut printer = Printer::new(format, args.limit, args.truncate, args.topics.len() > 1);
    let mut schemas: std::collections::HashMap<String, Schema> = std::collections::HashMap::new();
    let mut incomplete = false;
    for file in &files {
        let mut on_msg = |ch: &export::ChannelInfo,
                          h: &mcap::records::MessageHeader,
                          data: &[u8]|
         -> Result<(), ExportError> {
            if !args.topics.contains(&ch.spec.name) || printer.done() {
                return Ok(());
            }
            if h.log_time < start || h.log_time >= end {
                return Ok(());
            }
            let s = match schemas.entry(ch.spec.name.clone()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => e.insert(
                    topic_schema(&ch.spec.type_name, &ch.spec.definition).map_err(|f| {
                        ExportError::Metadata {
                            path: file.clone(),
                            reason: f.msg,
                        }
                    })?,
                ),
            };
            let rec = Record {
                topic: 0,
                log_time: h.log_time,
                publish_time: h.publish_time,
                sequence: u64::from(h.sequence),
                payload: data.to_vec(),
            };
            printer.print_lenient(&ch.spec.name, s, &rec);
            Ok(())
        };
        for s in export::import_mcap_records(file, &mut on_msg)? {
            eprintln!("motedb: {}: {}", s.file.display(), s.reason);
            incomplete = true;
        }
    }
    let code = printer.exit_code();
    Ok(if incomplete { 3 } else { code })
}

pub(crate) struct Printer {
    format: Format,
    limit: Option<u64>,
    truncate: Option<usize>,
    printed: u64,
    failed: u64,
    /// Several topics: each YAML document starts with a `# <topic>` line.
    name_topics: bool,
    out: std::io::BufWriter<std::io::Stdout>,
}

impl Printer {
    fn new(
        format: Format,
        limit: Option<u64>,
        truncate: Option<usize>,
        name_topics: bool,
    ) -> Printer {
        Printer {
            format,
            limit,
            truncate,
            printed: 0,
            failed: 0,
            name_topics,
            out: std::io::BufWriter::new(std::io::stdout()),
        }
    }

    fn done(&self) -> bool {
        self.limit.is_some_and(|l| self.printed >= l)
    }

    fn print(&mut self, topic: &str, schema: &Schema, rec: &Record) -> Result<(), Fail> {
        self.print_lenient(topic, schema, rec);
        Ok(())
    }

    /// Prints one message; a decode failure is reported and counted.
    fn print_lenient(&mut self, topic: &str, schema: &Schema, rec: &Record) {
        let value = match cdr::decode(schema, &rec.payload) {
            Ok(v) => match self.truncate {
                Some(n) => v.truncated(n),
                None => v,
            },
            Err(e) => {
                eprintln!(
                    "motedb: {topic} message {} (log time {}): cannot decode: {e}",
                    rec.sequence,
                    format_unix(rec.log_time)
                );
                self.failed += 1;
                return;
            }
        };
        let text = match self.format {
            Format::Json => {
                // Written by hand so message fields keep definition order.
                format!(
                    "{{\"topic\":{},\"log_time\":{},\"publish_time\":{},\"sequence\":{},\"message\":{}}}\n",
                    json!(topic),
                    rec.log_time,
                    rec.publish_time,
                    rec.sequence,
                    value.to_json()
                )
            }
            Format::Yaml if self.name_topics => format!("# {topic}\n{}---\n", value.to_yaml()),
            Format::Yaml => format!("{}---\n", value.to_yaml()),
        };
        // A closed pipe (e.g. `| head`) ends output quietly.
        if self.out.write_all(text.as_bytes()).is_err() {
            self.limit = Some(0);
        }
        self.printed += 1;
    }

    fn exit_code(&mut self) -> u8 {
        // Flush failure here is a closed pipe; output already went where it could.
        let _ = self.out.flush();
        if self.failed > 0 {
            3
        } else {
            0
        }
    }
}

pub(crate) fn msgdef(type_name: &str, prefixes: &[PathBuf]) -> CliResult {
    let prefixes = if prefixes.is_empty() {
        ament_prefixes()
    } else {
        prefixes.to_vec()
    };
    let text =
        cdr::definition::resolve(type_name, &prefixes).map_err(|e| fail(4, e.to_string()))?;
    print!("{text}");
    Ok(0)
}
