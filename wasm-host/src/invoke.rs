//! `wasm-host run --invoke`: call one export instead of running the
//! guest as a command, as `wasmtime run --invoke` does. A component's call
//! is written in WAVE (`process("abc")`) and its results printed in WAVE; a
//! core module's export takes its numeric arguments from the command line
//! and prints one result per line.

use host::{GuestModule, Sandbox};
use wasmtime::component::Type;
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;
use wasmtime::component::wasm_wave::wasm::{DisplayFuncResults, WasmFunc};
use wasmtime::{Val, ValType};

/// Why an invocation did not produce results.
pub enum InvokeError {
    /// The call or its arguments cannot be parsed or do not fit the export.
    Usage(String),
    /// The library refused or the guest ended (trap, exit, timeout).
    Host(host::Error),
}

impl From<host::Error> for InvokeError {
    fn from(error: host::Error) -> Self {
        InvokeError::Host(error)
    }
}

/// Calls what `call` names in `module`, and returns its results as the
/// lines to print.
pub fn invoke(sandbox: &Sandbox, module: &GuestModule, call: &str, args: &[String]) -> Result<String, InvokeError> {
    if module.is_component() {
        if !args.is_empty() {
            return Err(InvokeError::Usage(format!(
                "a component's arguments go inside the --invoke call, as WAVE: `{call}(...)`"
            )));
        }
        invoke_component(sandbox, module, call)
    } else {
        invoke_core(sandbox, module, call, args)
    }
}

fn invoke_component(sandbox: &Sandbox, module: &GuestModule, call: &str) -> Result<String, InvokeError> {
    let parsed = UntypedFuncCall::parse(call)
        .map_err(|e| InvokeError::Usage(format!("--invoke `{call}` is not a WAVE function call: {e}")))?;
    let mut guest = sandbox.instantiate_component(module)?;
    let ty = guest.func_type(parsed.name())?;
    if let Some(unprintable) = ty.results().find_map(|result| unprintable(&result)) {
        return Err(InvokeError::Usage(format!(
            "--invoke `{}`: the export returns {unprintable}, which has no WAVE text to print; nothing was called",
            parsed.name()
        )));
    }
    let param_types: Vec<_> = WasmFunc::params(&ty).collect();
    let params = parsed
        .to_wasm_params(&param_types)
        .map_err(|e| InvokeError::Usage(format!("--invoke `{call}`: {e}")))?;
    let results = guest.call_values(parsed.name(), &params)?;
    Ok(format!("{}\n", DisplayFuncResults(&results)))
}

fn invoke_core(sandbox: &Sandbox, module: &GuestModule, export: &str, args: &[String]) -> Result<String, InvokeError> {
    let mut guest = sandbox.instantiate(module)?;
    let ty = guest.func_type(export)?;
    if ty.params().len() != args.len() {
        return Err(InvokeError::Usage(format!(
            "`{export}` takes {} argument(s), {} given: {ty}",
            ty.params().len(),
            args.len()
        )));
    }
    let params = ty
        .params()
        .zip(args)
        .map(|(ty, arg)| {
            parse_core(&ty, arg).ok_or_else(|| InvokeError::Usage(format!("`{arg}` is not a valid {ty} argument")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let results = guest.call_values(export, &params)?;
    Ok(results.iter().map(|value| format!("{}\n", show_core(value))).collect())
}

/// The first part of a result of type `ty` that WAVE cannot write (a
/// handle, which only means something inside the instance, or a type WAVE
/// does not know), said in words; `None` when all of it can be printed.
/// Checked before the call: Wasmtime's WAVE writer panics on such a value.
fn unprintable(ty: &Type) -> Option<&'static str> {
    let inner = |mut types: Box<dyn Iterator<Item = Type> + '_>| types.find_map(|ty| unprintable(&ty));
    match ty {
        Type::Own(_) | Type::Borrow(_) => Some("a resource"),
        Type::Stream(_) => Some("a stream"),
        Type::Future(_) => Some("a future"),
        Type::ErrorContext => Some("an error-context"),
        Type::Map(_) => Some("a map"),
        Type::List(list) => unprintable(&list.ty()),
        Type::FixedLengthList(list) => unprintable(&list.ty()),
        Type::Option(option) => unprintable(&option.ty()),
        Type::Record(record) => inner(Box::new(record.fields().map(|field| field.ty))),
        Type::Tuple(tuple) => inner(Box::new(tuple.types())),
        Type::Variant(variant) => inner(Box::new(variant.cases().filter_map(|case| case.ty))),
        Type::Result(result) => inner(Box::new(result.ok().into_iter().chain(result.err()))),
        Type::Bool
        | Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64
        | Type::Float32
        | Type::Float64
        | Type::Char
        | Type::String
        | Type::Enum(_)
        | Type::Flags(_) => None,
    }
}

/// A numeric argument, decimal or `0x` hexadecimal for integers, as
/// `wasmtime run --invoke` reads it.
fn parse_core(ty: &ValType, text: &str) -> Option<Val> {
    let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
    Some(match ty {
        ValType::I32 => Val::I32(match hex {
            Some(digits) => u32::from_str_radix(digits, 16).ok()? as i32,
            None => text.parse().ok()?,
        }),
        ValType::I64 => Val::I64(match hex {
            Some(digits) => u64::from_str_radix(digits, 16).ok()? as i64,
            None => text.parse().ok()?,
        }),
        ValType::F32 => Val::F32(text.parse::<f32>().ok()?.to_bits()),
        ValType::F64 => Val::F64(text.parse::<f64>().ok()?.to_bits()),
        _ => return None,
    })
}

fn show_core(value: &Val) -> String {
    match value {
        Val::I32(v) => v.to_string(),
        Val::I64(v) => v.to_string(),
        Val::F32(bits) => f32::from_bits(*bits).to_string(),
        Val::F64(bits) => f64::from_bits(*bits).to_string(),
        Val::V128(v) => v.as_u128().to_string(),
        _ => "<reference>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_arguments_are_decimal_or_hexadecimal_numbers_of_the_parameter_type() {
        assert!(matches!(parse_core(&ValType::I32, "-7"), Some(Val::I32(-7))));
        assert!(matches!(parse_core(&ValType::I32, "0xffffffff"), Some(Val::I32(-1))));
        assert!(matches!(parse_core(&ValType::I64, "0X10"), Some(Val::I64(16))));
        assert!(matches!(parse_core(&ValType::F64, "1.5"), Some(Val::F64(bits)) if f64::from_bits(bits) == 1.5));
        assert!(parse_core(&ValType::I32, "4294967296").is_none());
        assert!(parse_core(&ValType::I32, "1.5").is_none());
        assert!(parse_core(&ValType::I32, "0xzz").is_none());
    }
}
