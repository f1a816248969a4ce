//! What a component file asks of the host, read from its bytes before it is
//! compiled: the instances, memories and tables one call creates (so the
//! instance pool can be sized for the components actually loaded) and the names
//! it imports (so a missing one can be named with what to do about it).
//!
//! A component is a tree: core modules and nested components are defined once
//! and instantiated any number of times. Counting follows the instantiations,
//! the way wasmtime flattens a component into one list of core instances.

use wasmtime::wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentOuterAliasKind, ComponentTypeRef, Encoding,
    Instance, Parser, Payload,
};

/// Elements a pooled table slot holds at least (wasmtime's default): tables may
/// grow past their initial size.
pub const MIN_TABLE_ELEMENTS: u64 = 20_000;

/// What one call of a component takes from the instance pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallNeeds {
    /// Core module instances created per call (a Rust component has about 3,
    /// JavaScript 4, Python 14).
    pub core_instances: u32,
    /// Linear memories defined across those instances.
    pub memories: u32,
    /// Tables defined across those instances.
    pub tables: u32,
    /// The most memories one core module defines.
    pub memories_per_module: u32,
    /// The most tables one core module defines.
    pub tables_per_module: u32,
    /// The largest initial table, in elements.
    pub table_elements: u64,
    /// Linear memory (all memories together) the call holds before the guest runs
    /// a single instruction, in bytes.
    pub initial_memory: u64,
}

impl CallNeeds {
    /// Enough for a call of either `self` or `other` (one call at a time per slot).
    pub fn max(self, other: CallNeeds) -> CallNeeds {
        CallNeeds {
            core_instances: self.core_instances.max(other.core_instances),
            memories: self.memories.max(other.memories),
            tables: self.tables.max(other.tables),
            memories_per_module: self.memories_per_module.max(other.memories_per_module),
            tables_per_module: self.tables_per_module.max(other.tables_per_module),
            table_elements: self.table_elements.max(other.table_elements),
            initial_memory: self.initial_memory.max(other.initial_memory),
        }
    }

    /// Whether a pool slot sized for `self` holds a call needing `other`. The
    /// start-up memory is not the pool's concern (each plugin's `max_memory` is),
    /// and a pooled table holds at least [`MIN_TABLE_ELEMENTS`].
    pub fn covers(&self, other: &CallNeeds) -> bool {
        let slot = CallNeeds {
            table_elements: self.table_elements.max(MIN_TABLE_ELEMENTS),
            initial_memory: other.initial_memory,
            ..*self
        };
        slot.max(*other) == slot
    }

    /// `self` instantiated once more inside something needing `other` already.
    fn add(self, other: CallNeeds) -> CallNeeds {
        CallNeeds {
            core_instances: self.core_instances.saturating_add(other.core_instances),
            memories: self.memories.saturating_add(other.memories),
            tables: self.tables.saturating_add(other.tables),
            initial_memory: self.initial_memory.saturating_add(other.initial_memory),
            ..self.max(other)
        }
    }
}

/// A component file as the host sees it before compiling it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// What one call takes from the pool.
    pub needs: CallNeeds,
    /// The component's top-level imports other than types, e.g. `wasi:http/types@0.2.3`.
    pub imports: Vec<String>,
}

/// Why a file's needs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InspectError {
    /// A core WebAssembly module (e.g. built for `wasm32-wasip1` or
    /// `wasm32-unknown-unknown`), not a component.
    #[error("this is a core WebAssembly module, not a component")]
    CoreModule,
    /// Not WebAssembly, or cut short.
    #[error("{0}")]
    Malformed(String),
    /// Instantiates a module or component it imports: nothing the host can give.
    #[error("it instantiates a module or component it imports, which the host cannot provide")]
    ImportedCode,
}

/// Reads what `bytes` (a component) needs per call and what it imports.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, InspectError> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut imports = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| InspectError::Malformed(e.message().to_string()))?;
        match payload {
            Payload::Version { encoding, .. } => match encoding {
                Encoding::Module if stack.is_empty() => return Err(InspectError::CoreModule),
                Encoding::Module => stack.push(Frame::Module(CallNeeds {
                    core_instances: 1,
                    ..CallNeeds::default()
                })),
                Encoding::Component => stack.push(Frame::Component(Scope::default())),
            },
            Payload::End(_) => {
                let done = match stack.pop() {
                    Some(Frame::Module(needs)) => Defined::Module(Some(needs)),
                    Some(Frame::Component(scope)) => Defined::Component(Some(scope.total)),
                    None => return Err(malformed("an end without a start")),
                };
                match (stack.last_mut(), done) {
                    (None, Defined::Component(Some(total))) => {
                        return Ok(Inspection {
                            needs: total,
                            imports,
                        })
                    }
                    (Some(Frame::Component(parent)), Defined::Module(m)) => parent.modules.push(m),
                    (Some(Frame::Component(parent)), Defined::Component(c)) => {
                        parent.components.push(c)
                    }
                    _ => return Err(malformed("a module nested in a module")),
                }
            }
            // Core module contents: what it defines (imported memories/tables are
            // someone else's, counted where they are defined).
            Payload::MemorySection(reader) => {
                let needs = module_frame(&mut stack)?;
                for memory in reader {
                    let memory = memory.map_err(|e| malformed(e.message()))?;
                    needs.memories += 1;
                    needs.memories_per_module += 1;
                    needs.initial_memory = needs.initial_memory.saturating_add(
                        memory.initial.saturating_mul(u64::from(memory.page_size())),
                    );
                }
            }
            Payload::TableSection(reader) => {
                let needs = module_frame(&mut stack)?;
                for table in reader {
                    let table = table.map_err(|e| malformed(e.message()))?;
                    needs.tables += 1;
                    needs.tables_per_module += 1;
                    needs.table_elements = needs.table_elements.max(table.ty.initial);
                }
            }
            // Component contents: index spaces of modules and components, and the
            // instantiations that create core instances.
            Payload::ComponentImportSection(reader) => {
                let depth = stack.len();
                let scope = component_frame(&mut stack)?;
                for import in reader {
                    let import = import.map_err(|e| malformed(e.message()))?;
                    // Types a world `use`s are imported too; only the rest must be provided.
                    if depth == 1 && !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        imports.push(import.name.name.to_string());
                    }
                    match import.ty {
                        ComponentTypeRef::Module(_) => scope.modules.push(None),
                        ComponentTypeRef::Component(_) => scope.components.push(None),
                        _ => {}
                    }
                }
            }
            Payload::ComponentExportSection(reader) => {
                let scope = component_frame(&mut stack)?;
                for export in reader {
                    let export = export.map_err(|e| malformed(e.message()))?;
                    // An export adds the item to its index space again.
                    match export.kind {
                        ComponentExternalKind::Module => {
                            let m = scope.module(export.index)?;
                            scope.modules.push(m);
                        }
                        ComponentExternalKind::Component => {
                            let c = scope.component(export.index)?;
                            scope.components.push(c);
                        }
                        _ => {}
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    let alias = alias.map_err(|e| malformed(e.message()))?;
                    alias_into(&mut stack, alias)?;
                }
            }
            Payload::InstanceSection(reader) => {
                let scope = component_frame(&mut stack)?;
                for instance in reader {
                    let instance = instance.map_err(|e| malformed(e.message()))?;
                    if let Instance::Instantiate { module_index, .. } = instance {
                        let m = scope
                            .module(module_index)?
                            .ok_or(InspectError::ImportedCode)?;
                        scope.total = scope.total.add(m);
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let scope = component_frame(&mut stack)?;
                for instance in reader {
                    let instance = instance.map_err(|e| malformed(e.message()))?;
                    if let wasmtime::wasmparser::ComponentInstance::Instantiate {
                        component_index,
                        ..
                    } = instance
                    {
                        let c = scope
                            .component(component_index)?
                            .ok_or(InspectError::ImportedCode)?;
                        scope.total = scope.total.add(c);
                    }
                }
            }
            _ => {}
        }
    }
    Err(malformed("the file ends early"))
}

/// A module or component being read.
enum Frame {
    Module(CallNeeds),
    Component(Scope),
}

/// A finished definition, for its parent's index space (`None`: imported, unknown).
enum Defined {
    Module(Option<CallNeeds>),
    Component(Option<CallNeeds>),
}

/// One component's index spaces and what its own instantiations add up to.
#[derive(Default)]
struct Scope {
    modules: Vec<Option<CallNeeds>>,
    components: Vec<Option<CallNeeds>>,
    total: CallNeeds,
}

impl Scope {
    fn module(&self, index: u32) -> Result<Option<CallNeeds>, InspectError> {
        self.modules
            .get(index as usize)
            .copied()
            .ok_or_else(|| malformed("a module index out of range"))
    }

    fn component(&self, index: u32) -> Result<Option<CallNeeds>, InspectError> {
        self.components
            .get(index as usize)
            .copied()
            .ok_or_else(|| malformed("a component index out of range"))
    }
}

fn alias_into(stack: &mut [Frame], alias: ComponentAlias<'_>) -> Result<(), InspectError> {
    let depth = stack.len();
    let item = match alias {
        ComponentAlias::Outer { kind, count, index } => {
            let outer = depth
                .checked_sub(1 + count as usize)
                .ok_or_else(|| malformed("an outer alias past the outermost component"))?;
            let Frame::Component(scope) = &stack[outer] else {
                return Err(malformed("an outer alias into a module"));
            };
            match kind {
                ComponentOuterAliasKind::CoreModule => Defined::Module(scope.module(index)?),
                ComponentOuterAliasKind::Component => Defined::Component(scope.component(index)?),
                _ => return Ok(()),
            }
        }
        // Taken from an instance's exports: unknown unless instantiated, which
        // `inspect` refuses.
        ComponentAlias::InstanceExport { kind, .. } => match kind {
            ComponentExternalKind::Module => Defined::Module(None),
            ComponentExternalKind::Component => Defined::Component(None),
            _ => return Ok(()),
        },
        ComponentAlias::CoreInstanceExport { .. } => return Ok(()),
    };
    let scope = component_frame(stack)?;
    match item {
        Defined::Module(m) => scope.modules.push(m),
        Defined::Component(c) => scope.components.push(c),
    }
    Ok(())
}

fn module_frame(stack: &mut [Frame]) -> Result<&mut CallNeeds, InspectError> {
    match stack.last_mut() {
        Some(Frame::Module(needs)) => Ok(needs),
        _ => Err(malformed("a core section outside a module")),
    }
}

fn component_frame(stack: &mut [Frame]) -> Result<&mut Scope, InspectError> {
    match stack.last_mut() {
        Some(Frame::Component(scope)) => Ok(scope),
        _ => Err(malformed("a component section outside a component")),
    }
}

fn malformed(message: &str) -> InspectError {
    InspectError::Malformed(message.to_string())
}
