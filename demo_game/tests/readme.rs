//! The README's Bevy quick start is `examples/quick_start.rs` (which the test
//! command builds): the two must not drift apart.

#[test]
fn the_readme_quick_start_is_the_example_file() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/quick_start.rs");
    let start = readme
        .find("```rust,ignore\n//! A networked Bevy game")
        .expect("the quick start block in README.md")
        + "```rust,ignore\n".len();
    let end = start + readme[start..].find("```").expect("end of the block");
    assert_eq!(&readme[start..end], example);
}
