// mlcc's pass plugin: clang runs the pipeline mlcc chose for a unit in place of
// its own, then generates code from the optimized module in the same process.
//
// clang loads it with -fpass-plugin; the pipeline, in opt's -passes syntax, comes
// in the environment variable MLCC_PLUGIN_PASSES (clang parses -mllvm before it loads
// pass plugins, so an option of the plugin's own would be refused). Without the
// variable the plugin does nothing and clang runs its own pipeline.
//
// How: at the pipeline's start (after clang's forceattrs) a required module pass
// runs the chosen pipeline; from then on the plugin answers "no" to every optional
// pass of clang's pipeline (the pass instrumentation's should-run callback). Passes
// LLVM marks required (the verifier, always-inline, the coroutine lowering) still
// run; the plugin knows those that leave the module as it is (runsAfterChosen) and
// fails the compile with an error before any other, so that mlcc builds the unit
// the three-process way instead.
// mlcc/plugin_build.py builds it; tests/test_plugin_route.py holds the objects
// byte-identical to the three-process route.
//
// It also gives pipelines a pass of mlcc's own, in clang (named in the chosen
// pipeline) and in opt (-load-pass-plugin): `mlcc-inline-linkonce`, see below.
//
// The one-process route (mlcc/one_process.py) compiles a unit from its source in this
// one clang, and asks two more things of the plugin, at the pipeline's start:
// - the bound on slow passes (mlcc/passes.py, `bounded`): with MLCC_PLUGIN_SLOW_BOUND
//   set, a module of more instructions than that runs MLCC_PLUGIN_PASSES_BOUNDED;
// - the output cache's probe (mlcc/output_cache.py): with MLCC_PLUGIN_KEY_PREFIX and
//   MLCC_PLUGIN_CACHE_DIR set, the key is the sha256 of the prefix, a NUL and the
//   module's bitcode; when the cache holds an entry under it, the module is emptied
//   (code generation then has nothing to do) and mlcc delivers the cached object.
// - the small-unit rule (mlcc/driver.py, `_small_unit`): with MLCC_PLUGIN_SMALL_UNIT
//   set, a module whose bitcode is under that many bytes gets clang's own pipeline and
//   code generation: the plugin runs nothing of its own, and sets the code generation
//   options MLCC_PLUGIN_SMALL_UNDO names (the chosen pipeline's -mllvm knobs, comma
//   separated) back to their defaults before clang's passes or code generation read them.
// What was done goes to the file MLCC_PLUGIN_REPORT names: key, hit, bounded, small,
// the instruction count and the bitcode's bytes, one `name=value` a line.
//
// Trials and search (mlcc/trials.py) build one unit with several pipelines, and two of
// them often optimize it to the same module; its object is then the same too. With
// MLCC_PLUGIN_OPTIMIZED set to a file name, the plugin writes there, after the chosen
// pipeline, `optimized=` the sha256 of MLCC_PLUGIN_OPTIMIZED_PREFIX (the build's code
// generation arguments), a NUL and the optimized module's bitcode without its local
// names (`bitcodeWithoutLocalNames`), and `same=1` when
// that is one of the comma-separated hashes in MLCC_PLUGIN_OPTIMIZED_SEEN (the unit's
// earlier builds): then the module is emptied, code generation has nothing to do, and
// mlcc takes the earlier build's object. A module of more instructions than
// MLCC_PLUGIN_OPTIMIZED_LIMIT is not hashed (`optimized=` empty): two pipelines seldom
// make the same large module, and hashing it costs more than that saves.

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Analysis/LazyCallGraph.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/PassInstrumentation.h"
#include "llvm/IR/PassManager.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

using namespace llvm;

namespace {

// `mlcc-inline-linkonce`: marks `alwaysinline` every linkonce_odr function (a C++
// template or in-class method) that the unit calls from one call site only and that
// has at most InlineLinkonceMaxInstructions instructions, unless an attribute already
// decides its inlining. LLVM's inliner gives its bonus for the last call only to
// functions of local linkage; a linkonce_odr function inlined at its one call is
// dropped from the object as well. Measured per object and linked in docs/MODEL.md
// (issue 28, "per-function inlining hints"; scripts/inline_hint_rule.py).
constexpr unsigned InlineLinkonceMaxInstructions = 60;

class InlineLinkonce : public PassInfoMixin<InlineLinkonce> {
public:
  PreservedAnalyses run(Module &M, ModuleAnalysisManager &) {
    bool Changed = false;
    for (Function &F : M) {
      if (F.isDeclaration() || !F.hasLinkOnceODRLinkage() ||
          F.hasFnAttribute(Attribute::NoInline) || F.hasFnAttribute(Attribute::AlwaysInline) ||
          F.hasFnAttribute(Attribute::OptimizeNone) ||
          F.getInstructionCount() > InlineLinkonceMaxInstructions)
        continue;
      unsigned Calls = 0;
      for (User *U : F.users())
        if (auto *Call = dyn_cast<CallBase>(U); Call && Call->getCalledOperand() == &F)
          ++Calls;
      if (Calls == 1) {
        F.addFnAttr(Attribute::AlwaysInline);
        Changed = true;
      }
    }
    return Changed ? PreservedAnalyses::none() : PreservedAnalyses::all();
  }
};

bool parseMlccPass(StringRef Name, ModulePassManager &MPM,
                   ArrayRef<PassBuilder::PipelineElement>) {
  if (Name != "mlcc-inline-linkonce")
    return false;
  MPM.addPass(InlineLinkonce());
  return true;
}

// Set once the chosen pipeline has run: clang's own passes are skipped after it.
bool ChosenPipelineDone = false;

// Set while the chosen pipeline is parsed: a `default<Oz>` in it builds LLVM's default
// pipeline, which calls the pipeline-start callbacks again. There the plugin adds
// nothing, so that the nested default is opt's (and does not recurse without end).
bool ParsingChosen = false;

std::string env(const char *Name) {
  const char *Value = std::getenv(Name);
  return Value ? std::string(Value) : std::string();
}

// Instructions in the module's defined functions, as mlcc/ir_reader.py counts them.
uint64_t instructionCount(const Module &M) {
  uint64_t Count = 0;
  for (const Function &F : M)
    if (!F.isDeclaration())
      Count += F.getInstructionCount();
  return Count;
}

// The module as bitcode, as clang's front end writes it to a file on mlcc's split route
// (the driver asks for the use-list order with -emit-llvm-uselists): the small-unit
// rule measures the same bytes on both routes.
SmallVector<char, 0> bitcodeOf(const Module &M) {
  SmallVector<char, 0> Bitcode;
  raw_svector_ostream OS(Bitcode);
  WriteBitcodeToFile(M, OS, /*ShouldPreserveUseListOrder=*/true);
  return Bitcode;
}

// The module's bitcode as `bitcodeOf` writes it, but without the names of its local
// values (arguments, blocks, instructions): two pipelines that optimize a unit to the
// same code often name the values they made differently, and code generation does not
// read those names into an object. The names are put back afterwards.
SmallVector<char, 0> bitcodeWithoutLocalNames(Module &M) {
  std::vector<std::pair<Value *, std::string>> Names;
  auto Unname = [&Names](Value &V) {
    if (V.hasName()) {
      Names.emplace_back(&V, V.getName().str());
      V.setName("");
    }
  };
  for (Function &F : M) {
    for (Argument &A : F.args())
      Unname(A);
    for (BasicBlock &B : F) {
      Unname(B);
      for (Instruction &I : B)
        Unname(I);
    }
  }
  SmallVector<char, 0> Bitcode = bitcodeOf(M);
  for (auto &[V, Name] : Names)
    V->setName(Name);
  return Bitcode;
}

// The sha256 of `Prefix`, a NUL and `Bitcode`: the output cache's key for a module of
// this bitcode, and an optimized module's hash (see the top of this file).
std::string cacheKey(const SmallVector<char, 0> &Bitcode, const std::string &Prefix) {
  SHA256 Hash;
  Hash.update(Prefix);
  Hash.update(StringRef("\0", 1));
  Hash.update(StringRef(Bitcode.data(), Bitcode.size()));
  return toHex(Hash.final(), /*LowerCase=*/true);
}

// Everything out of the module, so that code generation has nothing to do: its object
// is replaced by the cached one.
void emptyModule(Module &M) {
  M.setModuleInlineAsm("");
  M.dropAllReferences();
  auto Erase = [](GlobalValue &GV) {
    GV.removeDeadConstantUsers();
    if (!GV.use_empty())
      GV.replaceAllUsesWith(PoisonValue::get(GV.getType()));
    GV.eraseFromParent();
  };
  while (!M.ifunc_empty())
    Erase(*M.ifunc_begin());
  while (!M.alias_empty())
    Erase(*M.alias_begin());
  while (!M.global_empty())
    Erase(*M.global_begin());
  while (!M.empty())
    Erase(*M.begin());
}

// Sets each named option back to its default value, as if clang's command line had
// not given it; the error names the first that is not an option.
Error undoOptions(StringRef Names) {
  StringMap<cl::Option *> &Options = cl::getRegisteredOptions();
  SmallVector<StringRef, 8> Each;
  Names.split(Each, ',', -1, /*KeepEmpty=*/false);
  for (StringRef Name : Each) {
    auto Found = Options.find(Name);
    if (Found == Options.end())
      return createStringError(inconvertibleErrorCode(), "no option -" + Name + " to undo");
    Found->second->setDefault();
  }
  return Error::success();
}

// Runs the chosen pipeline (or its bounded form, or nothing on a cache hit or for a
// small unit); or, when it could not be set up, fails the compile with `Problem` (an
// error on the module's context, as clang reports a backend error).
class RunChosenPipeline : public PassInfoMixin<RunChosenPipeline> {
  ModulePassManager Chosen;
  ModulePassManager Bounded;
  bool HasBound;
  uint64_t Bound;
  uint64_t SmallUnit; // 0: no small-unit rule
  std::string Problem;

public:
  RunChosenPipeline(ModulePassManager Chosen, ModulePassManager Bounded, bool HasBound,
                    uint64_t Bound, uint64_t SmallUnit, std::string Problem)
      : Chosen(std::move(Chosen)), Bounded(std::move(Bounded)), HasBound(HasBound),
        Bound(Bound), SmallUnit(SmallUnit), Problem(std::move(Problem)) {}

  PreservedAnalyses run(Module &M, ModuleAnalysisManager &MAM) {
    if (!Problem.empty()) {
      M.getContext().emitError("mlcc-pipeline: " + Problem);
      return PreservedAnalyses::all();
    }
    uint64_t Count = instructionCount(M);
    bool UseBounded = HasBound && Count > Bound;
    std::string Key, CacheDir = env("MLCC_PLUGIN_CACHE_DIR");
    bool Probe = !CacheDir.empty() && std::getenv("MLCC_PLUGIN_KEY_PREFIX");
    SmallVector<char, 0> Bitcode;
    if (Probe || SmallUnit > 0)
      Bitcode = bitcodeOf(M);
    bool Small = SmallUnit > 0 && Bitcode.size() < SmallUnit;
    bool Hit = false;
    if (Probe) {
      Key = cacheKey(Bitcode, env("MLCC_PLUGIN_KEY_PREFIX"));
      Hit = sys::fs::exists(CacheDir + "/" + Key.substr(0, 2) + "/" + Key.substr(2) + ".json");
    }
    std::string Report = env("MLCC_PLUGIN_REPORT");
    if (!Report.empty()) {
      std::error_code EC;
      raw_fd_ostream Out(Report, EC);
      if (EC) {
        M.getContext().emitError("mlcc-pipeline: cannot write " + Report + ": " + EC.message());
        return PreservedAnalyses::all();
      }
      Out << "key=" << Key << "\nhit=" << (Hit ? 1 : 0) << "\nbounded=" << (UseBounded ? 1 : 0)
          << "\nsmall=" << (Small ? 1 : 0) << "\ninstructions=" << Count
          << "\nbitcode=" << Bitcode.size() << "\n";
    }
    if (Small && !Hit) { // clang's own passes and code generation, without the knobs
      if (Error Err = undoOptions(env("MLCC_PLUGIN_SMALL_UNDO")))
        M.getContext().emitError("mlcc-pipeline: " + toString(std::move(Err)));
      return PreservedAnalyses::all();
    }
    PreservedAnalyses PA = PreservedAnalyses::none();
    if (Hit)
      emptyModule(M);
    else {
      PA = (UseBounded ? Bounded : Chosen).run(M, MAM);
      if (reportOptimized(M))
        PA = PreservedAnalyses::none(); // the module was emptied
    }
    ChosenPipelineDone = true; // not before: the chosen passes ask whether they may run
    return PA;
  }

  // The optimized module's hash to MLCC_PLUGIN_OPTIMIZED, and the module emptied when an
  // earlier build of the unit had the same (see the top of this file). A report that
  // cannot be written is an error on the module's context: the compile fails. True when
  // the module was emptied.
  static bool reportOptimized(Module &M) {
    std::string Path = env("MLCC_PLUGIN_OPTIMIZED");
    if (Path.empty())
      return false;
    uint64_t Limit = UINT64_MAX;
    std::string LimitText = env("MLCC_PLUGIN_OPTIMIZED_LIMIT");
    if (!LimitText.empty() && !to_integer(LimitText, Limit, 10)) {
      M.getContext().emitError("mlcc-pipeline: MLCC_PLUGIN_OPTIMIZED_LIMIT needs a number");
      return false;
    }
    std::string Hash = instructionCount(M) > Limit
        ? std::string()
        : cacheKey(bitcodeWithoutLocalNames(M), env("MLCC_PLUGIN_OPTIMIZED_PREFIX"));
    SmallVector<StringRef, 8> Seen;
    std::string SeenText = env("MLCC_PLUGIN_OPTIMIZED_SEEN");
    StringRef(SeenText).split(Seen, ',', -1, /*KeepEmpty=*/false);
    bool Same = !Hash.empty() && is_contained(Seen, Hash);
    std::error_code EC;
    raw_fd_ostream Out(Path, EC);
    if (EC) {
      M.getContext().emitError("mlcc-pipeline: cannot write " + Path + ": " + EC.message());
      return false;
    }
    Out << "optimized=" << Hash << "\nsame=" << (Same ? 1 : 0) << "\n";
    if (Same)
      emptyModule(M);
    return Same;
  }

  static bool isRequired() { return true; }
};

// The passes of clang's pipeline that run after the chosen one although asked not
// to (LLVM marks them required) and leave its module as they found it: containers,
// always-inline with nothing left to inline, coroutine lowering with no coroutines,
// function entry/exit instrumentation done by the chosen pipeline's own, remarks.
// Any other (a sanitizer, profile instrumentation) would change what opt and code
// generation make, so the plugin fails the compile instead and mlcc takes the
// three-process route.
bool runsAfterChosen(StringRef Name) {
  static const char *const Harmless[] = {
      "AlwaysInlinerPass",       "AnnotationRemarksPass",    "CoroCleanupPass",
      "CoroEarlyPass",           "CoroConditionalWrapper",   "EntryExitInstrumenterPass",
      "FunctionToLoopPassAdaptor", "ModuleToFunctionPassAdaptor", "VerifierPass"};
  for (const char *H : Harmless)
    if (Name == H)
      return true;
  return Name.starts_with("PassManager<");
}

// The context of the IR unit a pass is about to run on (null for one not known here).
LLVMContext *contextOf(Any &IR) {
  if (const Module **M = any_cast<const Module *>(&IR))
    return &(*M)->getContext();
  if (const Function **F = any_cast<const Function *>(&IR))
    return &(*F)->getContext();
  if (const Loop **L = any_cast<const Loop *>(&IR))
    return &(*L)->getHeader()->getContext();
  if (const LazyCallGraph::SCC **C = any_cast<const LazyCallGraph::SCC *>(&IR))
    return &(*C)->begin()->getFunction().getContext();
  return nullptr;
}

void registerCallbacks(PassBuilder &PB) {
  PB.registerPipelineParsingCallback(parseMlccPass);
  const char *Text = std::getenv("MLCC_PLUGIN_PASSES");
  if (Text == nullptr || *Text == '\0')
    return;
  PassInstrumentationCallbacks *PIC = PB.getPassInstrumentationCallbacks();
  std::string Pipeline(Text);
  std::string BoundedText = env("MLCC_PLUGIN_PASSES_BOUNDED");
  std::string BoundText = env("MLCC_PLUGIN_SLOW_BOUND");
  std::string SmallText = env("MLCC_PLUGIN_SMALL_UNIT");
  PB.registerPipelineStartEPCallback(
      [&PB, PIC, Pipeline, BoundedText, BoundText, SmallText](ModulePassManager &MPM,
                                                              OptimizationLevel) {
        if (ParsingChosen)
          return;
        ParsingChosen = true;
        ModulePassManager Chosen, Bounded;
        std::string Problem;
        uint64_t Bound = 0, SmallUnit = 0;
        bool HasBound = !BoundText.empty();
        if (PIC == nullptr)
          Problem = "clang gave its pass builder no instrumentation to skip its passes with";
        else if (Error Err = PB.parsePassPipeline(Chosen, Pipeline))
          Problem = toString(std::move(Err));
        else if (HasBound && (!to_integer(BoundText, Bound, 10) || BoundedText.empty()))
          Problem = "MLCC_PLUGIN_SLOW_BOUND needs a number and MLCC_PLUGIN_PASSES_BOUNDED";
        else if (!SmallText.empty() && !to_integer(SmallText, SmallUnit, 10))
          Problem = "MLCC_PLUGIN_SMALL_UNIT needs a number";
        else if (HasBound)
          if (Error Err = PB.parsePassPipeline(Bounded, BoundedText))
            Problem = toString(std::move(Err));
        ParsingChosen = false;
        MPM.addPass(RunChosenPipeline(std::move(Chosen), std::move(Bounded), HasBound, Bound,
                                      SmallUnit, std::move(Problem)));
      });
  if (PIC == nullptr)
    return;
  PIC->registerShouldRunOptionalPassCallback(
      [](StringRef, Any) { return !ChosenPipelineDone; });
  PIC->registerBeforeNonSkippedPassCallback([](StringRef Name, Any IR) {
    if (!ChosenPipelineDone || runsAfterChosen(Name))
      return;
    if (LLVMContext *Ctx = contextOf(IR))
      Ctx->emitError(Twine("mlcc-pipeline: clang's pipeline would run ") + Name +
                     " after the chosen one");
    ChosenPipelineDone = false; // one error is enough: let what follows run
  });
}

} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo llvmGetPassPluginInfo() {
  return {LLVM_PLUGIN_API_VERSION, "mlcc-pipeline", "1", registerCallbacks};
}
