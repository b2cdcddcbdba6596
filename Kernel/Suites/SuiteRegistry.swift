// Every in-kernel suite, in the order run=all runs them. Add new suites here.

enum SuiteRegistry {
    static var all: [TestSuite] {
        [
            ConsoleSuite.suite,
            PageAllocatorSuite.suite,
            HeapSuite.suite,
            PagingSuite.suite,
            SMPSuite.suite,
            IPIQueueRules.suite,          // early: its pair crosses the index wrap
            SpinlockTorture.suite,
            ThreadSuite.suite,
            PreemptSuite.suite,
            SleepSuite.suite,
            MigrateSuite.suite,
            IPIQueueTorture.suite,
            IPIQueueFlood.suite,
            IPIQueueWakeup.suite,
            HaltingWaitTorture.suite,
            CPUSyncSuite.suite,
            RendezvousSuite.suite,
            RendezvousPreemptSuite.suite,
            TLBShootdownSuite.suite,
            Bsd4Torture.suite,
            BindRules.suite,
            BindTorture.suite,
            BalanceSuite.suite,
            PanicSuites.nmi,
            LitmusSuite.suite,
            Benchmarks.suite,
            FastPathBench.suite,
            ScaleBench.suite,
            FaultSuites.pageFault,
            FaultSuites.divideError,
            FaultSuites.swiftTrap,
            FaultSuites.stackOverflow,
            FaultSuites.nullPointer,
            FaultSuites.threadStackOverflow,
            FaultSuites.ipiHandlerYields,
            FaultSuites.allCPUsFault,
            PanicSuites.basic,
            PanicSuites.lockHeldSuite,
            PanicSuites.all,
            PanicSuites.rendezvous,
            PanicSuites.nested,
        ]
    }
}
