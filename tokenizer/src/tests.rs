use super::*;

fn symbol_id(tok: &Tokenizer, symbol: &str) -> u32 {
    tok.vocab
        .symbols
        .iter()
        .position(|s| s == symbol)
        .unwrap_or_else(|| panic!("{symbol:?} not in the vocabulary")) as u32
}

#[test]
fn vocabulary_layout() {
    let tok = Tokenizer::new();
    assert_eq!(tok.vocab_size(), VOCAB_SIZE);
    assert_eq!(tok.vocab.symbols[SOT as usize], "<|startoftext|>");
    assert_eq!(tok.vocab.symbols[EOT as usize], "<|endoftext|>");
    assert_eq!(EOT as usize, VOCAB_SIZE - 1);
    assert_eq!(tok.vocab.merges.len(), N_MERGES);
    // Printable ASCII keeps its code point; the space byte is moved out of the whitespace.
    assert_eq!(
        tok.vocab.symbols[tok.vocab.byte_ids[b'a' as usize] as usize],
        "a"
    );
    assert_eq!(
        tok.vocab.symbols[tok.vocab.byte_ids[b' ' as usize] as usize + 256],
        "Ġ</w>"
    );
}

#[test]
fn single_letters_and_whole_words() {
    let tok = Tokenizer::new();
    assert_eq!(tok.encode("a"), vec![symbol_id(&tok, "a</w>")]);
    assert_eq!(
        tok.encode("A photo"),
        vec![symbol_id(&tok, "a</w>"), symbol_id(&tok, "photo</w>")]
    );
    // Clitics split off; digits are single pieces.
    let ids = tok.encode("it's 42");
    let expect: Vec<u32> = ["it</w>", "'s</w>", "4</w>", "2</w>"]
        .iter()
        .map(|s| symbol_id(&tok, s))
        .collect();
    assert_eq!(ids, expect);
    assert_eq!(
        tok.encode("<|startoftext|>x<|endoftext|>"),
        vec![SOT, symbol_id(&tok, "x</w>"), EOT]
    );
}

#[test]
fn cache_gives_the_same_ids() {
    let tok = Tokenizer::new();
    let first = tok.encode("goldfish, great white shark");
    assert_eq!(tok.encode("goldfish, great white shark"), first);
    assert_eq!(tok.name_len("goldfish"), tok.encode("goldfish").len());
}

#[test]
fn padding_to_the_context_length() {
    let tok = Tokenizer::new();
    let ids = tok
        .tokenize("a photo of a cat.", CONTEXT_LENGTH, false)
        .unwrap();
    let body = tok.encode("a photo of a cat.");
    assert_eq!(ids.len(), CONTEXT_LENGTH);
    assert_eq!(ids[0], i64::from(SOT));
    assert_eq!(
        ids[1..=body.len()],
        body.iter().map(|&i| i64::from(i)).collect::<Vec<_>>()
    );
    assert_eq!(ids[body.len() + 1], i64::from(EOT));
    assert!(ids[body.len() + 2..].iter().all(|&i| i == 0));
    // EOT is the largest id, so argmax finds it.
    let argmax = ids.iter().enumerate().max_by_key(|&(_, v)| *v).unwrap().0;
    assert_eq!(argmax, body.len() + 1);
    let empty = tok.tokenize("", 5, false).unwrap();
    assert_eq!(empty, vec![i64::from(SOT), i64::from(EOT), 0, 0, 0]);
}

#[test]
fn over_long_text_is_an_error_naming_its_length() {
    let tok = Tokenizer::new();
    let text = vec!["cat"; 80].join(" ");
    let err = tok.tokenize(&text, CONTEXT_LENGTH, false).unwrap_err();
    assert!(matches!(
        err,
        TokenizerError::TooLong {
            len: 82,
            max: 77,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("82"), "{msg}");
    assert!(msg.contains("77"), "{msg}");
    // Exactly the context length fits; one more does not.
    let fits = vec!["cat"; 75].join(" ");
    let ids = tok.tokenize(&fits, CONTEXT_LENGTH, false).unwrap();
    assert_eq!(ids[CONTEXT_LENGTH - 1], i64::from(EOT));
    assert!(tok
        .tokenize(&format!("{fits} cat"), CONTEXT_LENGTH, false)
        .is_err());
}

#[test]
fn truncation_keeps_the_context_length_and_ends_with_eot() {
    let tok = Tokenizer::new();
    let text = vec!["dog"; 100].join(" ");
    let ids = tok.tokenize(&text, CONTEXT_LENGTH, true).unwrap();
    let dog = i64::from(symbol_id(&tok, "dog</w>"));
    assert_eq!(ids.len(), CONTEXT_LENGTH);
    assert_eq!(ids[0], i64::from(SOT));
    assert!(ids[1..CONTEXT_LENGTH - 1].iter().all(|&i| i == dog));
    assert_eq!(ids[CONTEXT_LENGTH - 1], i64::from(EOT));
    assert_eq!(
        tok.tokenize("a b c", 1, true).unwrap(),
        vec![i64::from(EOT)]
    );
    assert!(tok.tokenize("a", 0, true).is_err());
}

#[test]
fn batch_and_decode() {
    let tok = Tokenizer::new();
    let batch = tok
        .tokenize_all(&["a cat", "a dog"], CONTEXT_LENGTH, false)
        .unwrap();
    assert_eq!(
        batch[1],
        tok.tokenize("a dog", CONTEXT_LENGTH, false).unwrap()
    );
    let ids = tok.encode("Crème brûlée, 3 ½ cups & naïve café!");
    assert_eq!(
        tok.decode(&ids).unwrap(),
        "crème brûlée , 3 ½ cups & naïve café ! "
    );
    assert!(matches!(
        tok.decode(&[EOT + 1]),
        Err(TokenizerError::UnknownId(_))
    ));
}

#[test]
fn bad_vocabulary_is_an_error() {
    assert!(matches!(
        Tokenizer::from_merges_gz(b"not gzip"),
        Err(TokenizerError::Vocab(_))
    ));
    let mut gz = Vec::new();
    {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::fast());
        enc.write_all(b"header\na b\n").unwrap();
    }
    let err = Tokenizer::from_merges_gz(&gz).err().expect("too short");
    assert!(err.to_string().contains("lines"), "{err}");
}
