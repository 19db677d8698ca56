//! A plugin: replaces the words the host knows, through the host's
//! imports of its WIT world (`wit/plugin.wit`), which read and change the
//! embedder's data.

wit_bindgen::generate!({ path: "wit", world: "plugin" });

use example::plugin::host;

struct Plugin;

impl Guest for Plugin {
    fn process(input: String) -> Result<String, String> {
        if input.split_whitespace().next().is_none() {
            return Err("no word to process".to_owned());
        }
        let words: Vec<String> = input
            .split_whitespace()
            .map(|word| host::lookup(word).unwrap_or_else(|| word.to_owned()))
            .collect();
        Ok(format!("#{}: {}", host::bump(), words.join(" ")))
    }

    fn spin() {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

export!(Plugin);
