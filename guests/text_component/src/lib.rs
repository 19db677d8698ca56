//! The string processor as a component: the host calls the functions of
//! its WIT world (`wit/text.wit`) with strings and gets strings back, no
//! pointers or buffers in sight.

wit_bindgen::generate!({ path: "wit", world: "text" });

struct Text;

impl Guest for Text {
    fn process(input: String) -> String {
        input.to_ascii_uppercase()
    }

    fn count(haystack: String, needle: String) -> u32 {
        if needle.is_empty() {
            return 0;
        }
        haystack.matches(needle.as_str()).count() as u32
    }

    fn spin() {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn fail() {
        panic!("text_component failed on purpose");
    }
}

export!(Text);
