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

#include "llvm/Analysis/LazyCallGraph.h"
#include "llvm/Analysis/LoopInfo.h"
#include "llvm/IR/Function.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/PassInstrumentation.h"
#include "llvm/IR/PassManager.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Support/Error.h"

#include <cstdlib>
#include <string>

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

// Runs the chosen pipeline; or, when it could not be set up, fails the compile with
// `Problem` (an error on the module's context, as clang reports a backend error).
class RunChosenPipeline : public PassInfoMixin<RunChosenPipeline> {
  ModulePassManager Chosen;
  std::string Problem;

public:
  RunChosenPipeline(ModulePassManager Chosen, std::string Problem)
      : Chosen(std::move(Chosen)), Problem(std::move(Problem)) {}

  PreservedAnalyses run(Module &M, ModuleAnalysisManager &MAM) {
    if (!Problem.empty()) {
      M.getContext().emitError("mlcc-pipeline: " + Problem);
      return PreservedAnalyses::all();
    }
    PreservedAnalyses PA = Chosen.run(M, MAM);
    ChosenPipelineDone = true;
    return PA;
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
  PB.registerPipelineStartEPCallback(
      [&PB, PIC, Pipeline](ModulePassManager &MPM, OptimizationLevel) {
        ModulePassManager Chosen;
        std::string Problem;
        if (PIC == nullptr)
          Problem = "clang gave its pass builder no instrumentation to skip its passes with";
        else if (Error Err = PB.parsePassPipeline(Chosen, Pipeline))
          Problem = toString(std::move(Err));
        MPM.addPass(RunChosenPipeline(std::move(Chosen), std::move(Problem)));
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
