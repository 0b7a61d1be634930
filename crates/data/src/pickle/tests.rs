use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn protocol2_containers() {
    // pickle.dumps({'a': [1, -2, 2.5, None, True, 'é', b'x', (1,2), 2**40, -300]}, protocol=2)
    let b = hex(
        "80027d710058010000006171015d7102284b014afeffffff4740040000000000004e885802000000c3a97103635f636f646563730a\
         656e636f64650a7104580100000078710558060000006c6174696e3171068671075271084b014b028671098a06000000000001\
         4ad4feffff65732e",
    );
    let v = from_slice(&b).unwrap();
    let list = v.get("a").and_then(Value::as_seq).unwrap();
    assert_eq!(
        list,
        &[
            Value::Int(1),
            Value::Int(-2),
            Value::Float(2.5),
            Value::None,
            Value::Bool(true),
            Value::Str("é".into()),
            Value::Bytes(b"x".to_vec()),
            Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
            Value::Int(1 << 40),
            Value::Int(-300),
        ]
    );
}

#[test]
fn numpy_array_big_endian_protocol4() {
    // pickle.dumps(np.array([[1.5, 2], [3, -4]], dtype='>f4'), protocol=4)
    let b =
        hex("8004959b000000000000008c166e756d70792e5f636f72652e6d756c74696172726179948c0c5f7265636f6e73747275637494\
         93948c056e756d7079948c076e6461727261799493944b0085944301629487945294284b014b024b02869468038c05647479706594\
         93948c02663494898887945294284b038c013e944e4e4e4affffffff4affffffff4b007494628943103fc00000400000004040\
         0000c0800000947494622e");
    assert_eq!(from_slice(&b).unwrap(), Value::Array { shape: vec![2, 2], data: vec![1.5, 2.0, 3.0, -4.0] });
}

#[test]
fn numpy_scalar_protocol2() {
    // pickle.dumps(np.float32(0.5), protocol=2)
    let b =
        hex("8002636e756d70792e5f636f72652e6d756c746961727261790a7363616c61720a7100636e756d70790a64747970650a710158\
         02000000663471028988877103527104284b0358010000003c71054e4e4e4affffffff4affffffff4b0074710662635f636f6465\
         63730a656e636f64650a710758040000000000003f710858060000006c6174696e31710986710a52710b86710c52710d2e");
    let v = from_slice(&b).unwrap();
    assert_eq!(v.as_f64(), Some(0.5));
}

#[test]
fn malformed_inputs_are_errors() {
    assert_eq!(from_slice(b""), Err(PickleError::Eof(0)));
    assert_eq!(from_slice(b"\x80\x02"), Err(PickleError::Eof(2)));
    assert_eq!(from_slice(b"\x80\x02\xff"), Err(PickleError::Opcode { op: 0xff, at: 2 }));
    assert_eq!(from_slice(b"."), Err(PickleError::Malformed { at: 1, what: "stack underflow" }));
    assert_eq!(from_slice(b"a."), Err(PickleError::Malformed { at: 1, what: "stack underflow" }));
    // Every truncation of a valid pickle is an error, never a panic.
    let b = hex("80027d710058010000006171015d7102284b014e65732e");
    for n in 0..b.len() {
        assert!(from_slice(&b[..n]).is_err(), "prefix {n}");
    }
}
