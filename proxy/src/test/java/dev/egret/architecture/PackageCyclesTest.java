package dev.egret.architecture;

import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.library.dependencies.SliceAssignment;
import com.tngtech.archunit.library.dependencies.SliceIdentifier;
import org.junit.jupiter.api.Test;

/**
 * The package tree follows a hop's path (listener, then the exchange and its stages, then the
 * upstream), and no package may need one that needs it back: a cycle is how a value type ends up
 * where only one side should see it. Runs in {@code mvn verify} over the production classes.
 */
class PackageCyclesTest {
  private static final JavaClasses EGRET = new ClassFileImporter()
      .withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS)
      .importPackages("dev.egret");

  /** One slice per package under dev.egret, the root package (the command line) included. */
  private static final SliceAssignment PACKAGES = new SliceAssignment() {
    @Override
    public SliceIdentifier getIdentifierOf(JavaClass c) {
      String p = c.getPackageName();
      if (p.equals("dev.egret")) {
        return SliceIdentifier.of("dev.egret");
      }
      if (p.startsWith("dev.egret.")) {
        String rest = p.substring("dev.egret.".length());
        int dot = rest.indexOf('.');
        return SliceIdentifier.of("dev.egret." + (dot < 0 ? rest : rest.substring(0, dot)));
      }
      return SliceIdentifier.ignore();
    }

    @Override
    public String getDescription() {
      return "the packages of dev.egret";
    }
  };

  @Test
  void noPackageNeedsOneThatNeedsItBack() {
    slices().assignedFrom(PACKAGES).should().beFreeOfCycles().check(EGRET);
  }
}
